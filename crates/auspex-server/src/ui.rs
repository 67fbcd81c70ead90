//! Read-only pages for people, beside the JSON API:
//!
//! | route | what |
//! |---|---|
//! | `GET /ui/incidents?status=open` | the incidents, newest first (refreshes every 30 s) |
//! | `GET /ui/incidents/{id}` | one incident: its signals on a time axis with the change events around it, the likely root causes, and its timeline |
//! | `GET /ui/silences?state=current` | the silences (`current`: active and pending), soonest end first |
//!
//! Server-rendered HTML with inline SVG and no scripts; every value from outside (labels,
//! titles, descriptions) is escaped, and the pages are served with a Content-Security-Policy
//! that allows no scripts at all. Actions (ack, resolve, merge, split; making and
//! expiring silences) stay with the API, `auspex incidents` and `auspex silences`.

use std::fmt::Write as _;
use std::sync::Arc;

use auspex_core::text::{clip, escape_markup as escape};
use auspex_core::time::format_rfc3339;
use auspex_core::{Explanation, Signal, SignalKind};
use auspex_incidents::{Incident, Status};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::{App, now_ms};
use crate::incidents::{ListQuery, changes_around, listed, load, parse_id, root_causes};
use crate::mlflow::MlflowStore;

/// Signals drawn on an incident's time axis; the rest are counted.
const MAX_ROWS: usize = 200;
const MIN: i64 = 60_000;
/// How long before an incident's first signal its time axis shows change events.
const CHANGE_LEAD: i64 = 30 * MIN;

/// `2026-11-22 09:53:16` (UTC).
fn when(ms: i64) -> String {
    format_rfc3339(ms).replace('T', " ").chars().take(19).collect()
}

fn page(code: StatusCode, title: &str, body: &str, refresh: bool) -> Response {
    let meta = if refresh { "<meta http-equiv=\"refresh\" content=\"30\">" } else { "" };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{meta}<title>{} · Auspex</title>\
         <style>{STYLE}</style></head><body><header><a href=\"/ui/incidents\">Auspex incidents</a>\
         <a href=\"/ui/silences\">Silences</a></header>\
         <main>{body}</main></body></html>\n",
        escape(title)
    );
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
            ),
        ],
        html,
    )
        .into_response()
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{background:#1f2933;padding:8px 16px}header a{color:#fff;text-decoration:none;font-weight:600;margin-right:16px}\
main{padding:12px 16px}table{border-collapse:collapse;margin:8px 0}\
td,th{padding:3px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}\
th{background:#f5f7fa}.open{color:#c62828;font-weight:600}.acknowledged{color:#b26a00}\
.resolved{color:#2e7d32}.active{color:#b26a00;font-weight:600}.pending{color:#3e4c59}.expired{color:#7b8794}.critical{color:#c62828;font-weight:600}.warning{color:#b26a00}\
code{font-size:12px}nav a{margin-right:12px}.muted{color:#7b8794}";

fn error_page(code: StatusCode, msg: &str) -> Response {
    page(code, "error", &format!("<h1>{}</h1><p>{}</p>", code.as_u16(), escape(msg)), false)
}

/// `GET /ui/incidents`.
pub async fn incidents_page<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let list = match listed(&app, &q).await {
        Ok(v) => v,
        Err((code, msg)) => return error_page(code, &msg),
    };
    let mut b = String::from("<h1>Incidents</h1><nav>");
    for (label, s) in [
        ("all", "all"),
        ("open", "open"),
        ("acknowledged", "acknowledged"),
        ("resolved", "resolved"),
    ] {
        let _ = write!(b, "<a href=\"/ui/incidents?status={s}\">{label}</a>");
    }
    b.push_str("</nav>");
    b.push_str(&incident_table(&list));
    page(StatusCode::OK, "Incidents", &b, true)
}

fn incident_table(list: &[Incident]) -> String {
    if list.is_empty() {
        return "<p class=\"muted\">No incidents.</p>".into();
    }
    let mut b = String::from(
        "<table><tr><th>id</th><th>status</th><th>severity</th><th>opened (UTC)</th>\
         <th>signals</th><th>services</th><th>title</th></tr>",
    );
    for i in list {
        let services: Vec<&str> = i.services.iter().take(5).map(String::as_str).collect();
        let more = i.services.len().saturating_sub(5);
        let more = if more > 0 { format!(" +{more}") } else { String::new() };
        let _ = write!(
            b,
            "<tr><td><a href=\"/ui/incidents/{id}\"><code>{id}</code></a></td>\
             <td class=\"{st}\">{st}{flap}</td><td class=\"{sev}\">{sev}</td><td>{opened}</td>\
             <td>{n}</td><td>{svc}{more}</td><td>{title}</td></tr>",
            id = i.id,
            st = i.status.as_str(),
            flap = match (i.flapping, i.withheld.is_empty()) {
                (true, true) => " (flapping)",
                (true, false) => " (flapping, silenced)",
                (false, false) => " (silenced)",
                (false, true) => "",
            },
            sev = i.severity.as_str(),
            opened = when(i.opened),
            n = i.signal_count,
            svc = escape(&services.join(", ")),
            title = escape(&clip(&i.title, 120)),
        );
    }
    b.push_str("</table>");
    b
}

/// `GET /ui/silences`.
pub async fn silences_page<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<crate::silences::ListQuery>,
) -> Response {
    let now = now_ms();
    let list = match crate::silences::listed(&app, &q, now) {
        Ok(v) => v,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let mut b = String::from("<h1>Silences</h1><nav>");
    for s in ["current", "active", "pending", "expired", "all"] {
        let _ = write!(b, "<a href=\"/ui/silences?state={s}\">{s}</a>");
    }
    b.push_str("</nav>");
    if list.is_empty() {
        b.push_str("<p class=\"muted\">No silences.</p>");
    } else {
        b.push_str(
            "<table><tr><th>id</th><th>state</th><th>starts (UTC)</th><th>ends (UTC)</th>\
             <th>by</th><th>matchers</th><th>comment</th></tr>",
        );
        for s in &list {
            let matchers: Vec<String> = s.matchers.iter().map(ToString::to_string).collect();
            let _ = write!(
                b,
                "<tr><td><code>{id}</code></td><td class=\"{st}\">{st}</td><td>{starts}</td>\
                 <td>{ends}</td><td>{by}</td><td><code>{m}</code></td><td>{comment}</td></tr>",
                id = escape(&s.id),
                st = s.state(now).as_str(),
                starts = when(s.starts),
                ends = when(s.ends),
                by = escape(&s.created_by),
                m = escape(&matchers.join(" ")),
                comment = escape(&clip(&s.comment, 300)),
            );
        }
        b.push_str("</table>");
    }
    b.push_str(
        "<p class=\"muted\">An incident sends no notification while every one of its signals \
         matches an active silence. Make and end them with <code>auspex silences</code>.</p>",
    );
    page(StatusCode::OK, "Silences", &b, true)
}

/// `GET /ui/incidents/{id}`.
pub async fn incident_page<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err((code, msg)) => return error_page(code, &msg),
    };
    let inc = match load(&app, id).await {
        Ok(i) => i,
        Err((code, msg)) => return error_page(code, &msg),
    };
    let changes = changes_around(&app, &inc).await;
    let causes = root_causes(&app, &inc, &changes, 5);
    let now = now_ms();
    let mut b = format!(
        "<h1>{}</h1><p><code>{}</code> · <span class=\"{st}\">{st}</span> · \
         <span class=\"{sev}\">{sev}</span> · opened {} UTC · last signal {} · {} signal(s)</p>",
        escape(&inc.title),
        inc.id,
        when(inc.opened),
        when(inc.last_signal),
        inc.signal_count,
        st = inc.status.as_str(),
        sev = inc.severity.as_str(),
    );
    let _ = write!(
        b,
        "<p>services: {}</p>",
        escape(&inc.services.iter().cloned().collect::<Vec<_>>().join(", "))
    );
    if !inc.unsent.is_empty() {
        let _ = write!(
            b,
            "<p class=\"warning\">notifications not yet sent: {}</p>",
            escape(&inc.unsent.join(", "))
        );
    }
    if !inc.withheld.is_empty() {
        let _ = write!(
            b,
            "<p class=\"muted\">notifications held back by a <a href=\"/ui/silences\">silence</a>: {}</p>",
            escape(&inc.withheld.join(", "))
        );
    }
    b.push_str(&timeline_svg(&inc, &changes, now));
    b.push_str("<h2>Likely root causes</h2>");
    if causes.is_empty() {
        b.push_str("<p class=\"muted\">None ranked.</p>");
    } else {
        b.push_str("<table><tr><th>#</th><th>service</th><th>score</th><th>why</th></tr>");
        for (k, c) in causes.iter().enumerate() {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
                k + 1,
                escape(&c.service),
                c.score,
                escape(&c.explanation)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Signals</h2><table><tr><th>fingerprint</th><th>start</th><th>end</th><th>n</th><th>score</th><th>title</th></tr>");
    for m in &inc.signals {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            m.fingerprint,
            when(m.start),
            m.end.map_or("active".into(), when),
            m.occurrences,
            m.score,
            escape(&m.title)
        );
    }
    b.push_str("</table><h2>Changes around it</h2>");
    if changes.is_empty() {
        b.push_str(
            "<p class=\"muted\">No deploys, config or flag changes from an hour before.</p>",
        );
    } else {
        b.push_str("<table><tr><th>time</th><th>change</th></tr>");
        for c in &changes {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td></tr>",
                when(c.start),
                escape(&change_title(c))
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Timeline</h2><table><tr><th>time</th><th>event</th><th>detail</th></tr>");
    for e in &inc.timeline {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.time),
            escape(&e.event),
            escape(&e.detail)
        );
    }
    b.push_str("</table>");
    let refresh = inc.status != Status::Resolved;
    page(StatusCode::OK, &inc.title, &b, refresh)
}

fn change_title(c: &Signal) -> String {
    let kind = c.labels.get("change_kind").unwrap_or("change");
    let svc = c.labels.get("service").unwrap_or("");
    let version = c.labels.get("version").map(|v| format!(" {v}")).unwrap_or_default();
    let t = format!("{kind} {svc}{version}");
    match &c.explanation {
        Explanation::Text { message } if !message.is_empty() && *message != t => {
            format!("{t}: {message}")
        }
        _ => t,
    }
}

/// The incident's signals as bars on a time axis (active ones run to the right edge, drawn
/// lighter), with the change events from half an hour before it as dashed lines.
pub fn timeline_svg(inc: &Incident, changes: &[Signal], now: i64) -> String {
    let rows = &inc.signals[..inc.signals.len().min(MAX_ROWS)];
    let first = rows.iter().map(|m| m.start).min().unwrap_or(inc.opened).min(inc.opened);
    // Changes up to half an hour before the first signal are in view (a deploy just before).
    let lead = (changes.iter().map(|c| c.start))
        .filter(|&t| t >= first - CHANGE_LEAD && t <= first)
        .min()
        .unwrap_or(first);
    let mut last = rows.iter().filter_map(|m| m.end).max().unwrap_or(first);
    if rows.iter().any(|m| m.end.is_none()) {
        last = last.max(inc.resolved.unwrap_or(now).max(inc.last_signal));
    }
    let span = (last - first).max(MIN);
    let pad = (span / 10).max(MIN);
    let (t0, t1) = (lead.min(first) - pad, last + pad / 2);
    let (label_w, plot_w, row_h, top) = (320.0, 640.0, 18.0, 28.0);
    let x = |t: i64| label_w + plot_w * (t - t0) as f64 / (t1 - t0) as f64;
    let height = top + row_h * rows.len() as f64 + 38.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"signals of the incident over time\">\
         <style>text{{font:11px system-ui,sans-serif;fill:#333}}.tick{{stroke:#e4e7eb}}\
         .alert{{fill:#d64545}}.anomaly{{fill:#e08a00}}.other{{fill:#3b82c4}}.active{{opacity:.55}}\
         .change{{stroke:#6b46c1;stroke-dasharray:4 3}}</style>",
        w = label_w + plot_w + 10.0
    );
    // Ticks at a round step: at most 8 across.
    let step = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 2880, 10080]
        .iter()
        .map(|m| m * MIN)
        .find(|st| (t1 - t0) / st <= 8)
        .unwrap_or((t1 - t0) / 8 + 1);
    let mut t = (t0 / step + 1) * step;
    while t < t1 {
        let xt = x(t);
        let _ = write!(
            s,
            "<line class=\"tick\" x1=\"{xt:.1}\" y1=\"{y0}\" x2=\"{xt:.1}\" y2=\"{y1:.1}\"/>\
             <text x=\"{xt:.1}\" y=\"14\" text-anchor=\"middle\">{hm}</text>",
            y0 = top - 8.0,
            y1 = height - 34.0,
            hm = &when(t)[11..16]
        );
        t += step;
    }
    for (k, m) in rows.iter().enumerate() {
        let y = top + row_h * k as f64;
        let end = m.end.unwrap_or(t1);
        let class = match m.kind {
            SignalKind::Alert => "alert",
            SignalKind::Anomaly => "anomaly",
            _ => "other",
        };
        let active = if m.end.is_none() { " active" } else { "" };
        let (x0, x1) = (x(m.start), x(end.max(m.start)));
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{ty:.1}\">{label}</text><rect class=\"sig {class}{active}\" x=\"{x0:.1}\" \
             y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"><title>{tip}</title></rect>",
            ty = y + row_h * 0.7,
            label = escape(&clip(&m.title, 48)),
            w = (x1 - x0).max(2.0),
            h = row_h - 4.0,
            tip = escape(&format!(
                "{} · {} → {}{}",
                m.title,
                when(m.start),
                m.end.map_or("active".into(), when),
                if m.occurrences > 1 { format!(" · ×{}", m.occurrences) } else { String::new() }
            )),
        );
    }
    for c in changes.iter().filter(|c| (t0..=t1).contains(&c.start)) {
        let xc = x(c.start);
        let _ = write!(
            s,
            "<line class=\"change\" x1=\"{xc:.1}\" y1=\"{y0}\" x2=\"{xc:.1}\" y2=\"{y1:.1}\">\
             <title>{tip}</title></line><text x=\"{xl:.1}\" y=\"{y1:.1}\" fill=\"#6b46c1\">{label}</text>",
            y0 = top - 8.0,
            y1 = height - 22.0,
            xl = xc + 2.0,
            tip = escape(&format!("{} at {}", change_title(c), when(c.start))),
            label = escape(&clip(&change_title(c), 28)),
        );
    }
    let hidden = inc.signals.len() - rows.len();
    let foot =
        if hidden > 0 { format!("{hidden} more signal(s) not drawn; ") } else { String::new() };
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{:.1}\" class=\"muted\">{foot}time in UTC; dashed: changes</text></svg>",
        height - 6.0
    );
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use auspex_core::Labels;
    use auspex_incidents::{Config, Correlator, Topology};

    fn signal(kind: SignalKind, pairs: &[(&str, &str)], start: i64, end: Option<i64>) -> Signal {
        let mut s = Signal::new(
            kind,
            Labels::from_pairs(pairs.iter().copied()).unwrap(),
            start,
            0.8,
            Explanation::Text { message: String::new() },
        );
        s.end = end;
        s
    }

    #[test]
    fn the_time_axis_draws_a_bar_per_signal_and_the_changes_in_view() {
        let mut c = Correlator::new(Config::default(), Topology::default());
        let t = 1_700_000_000_000;
        let a = signal(
            SignalKind::Alert,
            &[("alertname", "<script>x</script>"), ("service", "api")],
            t,
            Some(t + 10 * MIN),
        );
        let b = signal(
            SignalKind::Anomaly,
            &[("__name__", "latency"), ("service", "db")],
            t + MIN,
            None,
        );
        let id = c.observe(&a)[0].id();
        c.observe(&b);
        let inc = c.get(id).unwrap().clone();
        assert_eq!(inc.signals.len(), 2);
        let deploy = signal(
            SignalKind::Change,
            &[("change_kind", "deploy"), ("service", "api"), ("version", "v7")],
            t - 2 * MIN,
            Some(t - 2 * MIN),
        );
        let long_ago = signal(
            SignalKind::Change,
            &[("change_kind", "config"), ("service", "x")],
            t - 50 * MIN,
            Some(t - 50 * MIN),
        );
        let svg = timeline_svg(&inc, &[deploy, long_ago], t + 20 * MIN);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"sig ").count(), 2, "{svg}");
        assert_eq!(svg.matches("class=\"sig alert\"").count(), 1, "ended alert: solid");
        assert_eq!(
            svg.matches("class=\"sig anomaly active\"").count(),
            1,
            "active anomaly: lighter"
        );
        assert_eq!(svg.matches("<line class=\"change\"").count(), 1, "only the change in view");
        assert!(svg.contains("deploy api v7"), "{svg}");
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "{svg}");
        // Ticks are labelled HH:MM.
        assert!(svg.contains("text-anchor=\"middle\">"), "{svg}");
    }

    #[test]
    fn a_huge_incident_draws_at_most_max_rows() {
        let mut c = Correlator::new(Config::default(), Topology::default());
        let t = 1_700_000_000_000;
        let mut id = None;
        for i in 0..300 {
            let name = format!("a{i}");
            let s = signal(SignalKind::Alert, &[("alertname", name.as_str())], t + i, None);
            id = id.or(c.observe(&s).first().map(|ch| ch.id()));
        }
        let inc = c.get(id.unwrap()).unwrap().clone();
        let svg = timeline_svg(&inc, &[], t + MIN);
        assert_eq!(svg.matches("<rect class=\"sig ").count(), MAX_ROWS);
        assert!(svg.contains("100 more signal(s) not drawn"), "{}", &svg[svg.len() - 200..]);
    }
}
