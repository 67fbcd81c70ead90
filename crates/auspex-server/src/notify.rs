//! Notifications: when an incident opens, escalates, reopens (not while flapping) or
//! resolves, every `[[notify.targets]]` gets a POST, in its own format:
//!
//! - `webhook`: `{"version": "1", "event", "incident"}`; the raw body is signed with
//!   HMAC-SHA256 under the target's `secret`, sent as `X-Auspex-Signature: sha256=<hex>`.
//! - `slack`: an incoming-webhook `{"text": ...}` message.
//! - `pagerduty`: an Events API v2 event (`trigger`, or `resolve`), `dedup_key` = incident id.
//! - `alertmanager`: Alertmanager's own `POST /api/v2/alerts`, the incident as an alert (see
//!   [`alertmanager_alerts`]), so existing Alertmanager routes, receivers and silences apply.
//!
//! A target may filter by the incident's severity (`min_severity`), the event (`events`), the
//! services involved (`services`) and the labels of its signals (`labels`); a delivery is retried with doubling backoff; the outcome (delivered, or failed with the
//! last error) is recorded in the incident's timeline. Outbound URLs must match a prefix in
//! `notify.allow`, checked when the config loads and again before each send; a URL whose
//! path has `.` or `..` segments (which could climb out of an allowed prefix) never matches,
//! and redirects are not followed, so a target cannot be turned into a request to anywhere
//! else (SSRF).
//!
//! Silences (`crate::silences`) hold back what would be sent for an incident whose every signal
//! matches one; that check is made when a notification is queued, in `crate::incidents`.

use std::time::Duration;

use auspex_incidents::Incident;
use auspex_rca::Candidate;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::config::{NotifyCfg, NotifyTarget};

/// What happened to the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A new incident.
    Opened,
    /// Its severity rose.
    Escalated,
    /// It fired again after being resolved.
    Reopened,
    /// It is over.
    Resolved,
}

impl Event {
    /// The name used in payloads and the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Reopened => "reopened",
            Self::Resolved => "resolved",
        }
    }

    /// The event named `s` (as [`Event::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Opened, Self::Escalated, Self::Reopened, Self::Resolved]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// (scheme, host, port, path) of an http(s) URL; `None` if it is not one, or carries
/// credentials.
fn split(url: &str) -> Option<(&str, String, Option<&str>, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    Some((scheme, host.to_ascii_lowercase(), port, if path.is_empty() { "/" } else { path }))
}

/// Whether a path has a `.` or `..` segment (also percent-encoded, or after a backslash),
/// which the receiving server may resolve to a path outside the allowed prefix
/// (`/services/../admin`).
fn climbs(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase().replace("%2e", ".");
    lower.split(['/', '\\']).any(|seg| seg == "." || seg == "..")
}

fn default_port(scheme: &str) -> &'static str {
    if scheme == "https" { "443" } else { "80" }
}

/// Whether `url` matches one of the `allow` prefixes (scheme and host equal, port equal or
/// `*`, path starting with the prefix's path).
pub fn allowed(allow: &[String], url: &str) -> bool {
    let Some((scheme, host, port, path)) = split(url) else { return false };
    if climbs(path) {
        return false;
    }
    let port = port.unwrap_or(default_port(scheme));
    allow.iter().any(|a| {
        let Some((s, h, p, pp)) = split(a) else { return false };
        let p = p.unwrap_or(default_port(s));
        s == scheme && h == host && (p == "*" || p == port) && path.starts_with(pp)
    })
}

/// Services named in a message; the rest are counted.
const TEXT_SERVICES: usize = 10;
/// PagerDuty refuses a `payload.summary` longer than this (Events API v2).
const PAGERDUTY_SUMMARY_CHARS: usize = 1024;

/// The incident's services, at most [`TEXT_SERVICES`] named and the rest counted.
fn services_text(inc: &Incident) -> String {
    let mut services = inc.services.iter().take(TEXT_SERVICES).cloned().collect::<Vec<_>>();
    if inc.services.len() > TEXT_SERVICES {
        services.push(format!("+{} more", inc.services.len() - TEXT_SERVICES));
    }
    services.join(", ")
}

fn text(event: Event, inc: &Incident, causes: &[Candidate]) -> String {
    let mut t = format!(
        "[{}] {} incident {}: {} ({} signal(s), services: {})",
        event.as_str().to_uppercase(),
        inc.severity.as_str(),
        inc.id,
        inc.title,
        inc.signal_count,
        services_text(inc)
    );
    if let Some(c) = causes.first() {
        t.push_str(&format!(". Likely cause: {}", c.explanation));
    }
    t
}

/// The incident's page under `[notify] external_url`, if that is set.
pub fn incident_link(cfg: &NotifyCfg, inc: &Incident) -> Option<String> {
    let base = cfg.external_url.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/ui/incidents/{}", inc.id))
}

/// The name of the alert an incident becomes in Alertmanager.
pub const ALERTNAME: &str = "AuspexIncident";

/// An incident as Alertmanager alerts (`POST /api/v2/alerts`): one alert labelled
/// `alertname="AuspexIncident"`, `incident`, `severity`, firing until `now` + 4 × the target's
/// `resend` (the tick sends it again every `resend`, as Prometheus does, so it stays firing
/// while the incident is active and ends on its own if Auspex stops), or ending when the
/// incident resolved. A severity change makes a new alert in Alertmanager, so on `escalated`
/// and `resolved` the lower severities' alerts are ended too. `cause` is the likely root
/// cause, an annotation; `link`, the incident's page, is the `generatorURL`.
pub fn alertmanager_alerts(
    t: &NotifyTarget,
    event: Option<Event>,
    inc: &Incident,
    (cause, link): (Option<&str>, Option<&str>),
    now: i64,
) -> Vec<Value> {
    use auspex_core::time::format_rfc3339 as rfc;
    use auspex_incidents::Severity;
    let services = services_text(inc);
    let mut notes = json!({
        "summary": inc.title,
        "description": format!(
            "{} incident {}: {} ({} signal(s), services: {})",
            inc.severity.as_str(), inc.id, inc.title, inc.signal_count, services
        ),
        "status": inc.status.as_str(),
        "services": services,
    });
    if let Some(c) = cause {
        notes["likely_cause"] = json!(c);
    }
    let alert = |sev: Severity, ends: i64| {
        let mut a = json!({
            "labels": {"alertname": ALERTNAME, "incident": inc.id.to_string(), "severity": sev.as_str()},
            "annotations": notes,
            "startsAt": rfc(inc.opened),
            "endsAt": rfc(ends.max(inc.opened)),
        });
        if let Some(l) = link {
            a["generatorURL"] = json!(l);
        }
        a
    };
    let resolved =
        event == Some(Event::Resolved) || inc.status == auspex_incidents::Status::Resolved;
    let ends = if resolved {
        inc.resolved.unwrap_or(now)
    } else {
        let ttl = i64::try_from(t.resend.as_millis().saturating_mul(4)).unwrap_or(i64::MAX);
        now.saturating_add(ttl)
    };
    let mut out = vec![alert(inc.severity, ends)];
    if matches!(event, Some(Event::Escalated | Event::Resolved)) {
        for sev in [Severity::Info, Severity::Warning].into_iter().filter(|s| *s < inc.severity) {
            out.push(alert(sev, now));
        }
    }
    out
}

/// The body for a target; `link` is the incident's page ([`incident_link`]).
pub fn payload(
    t: &NotifyTarget,
    event: Event,
    inc: &Incident,
    causes: &[Candidate],
    link: Option<&str>,
) -> Value {
    match t.kind.as_str() {
        "slack" => {
            let mut text = text(event, inc, causes);
            if let Some(l) = link {
                text.push_str(&format!(" <{l}|Open in Auspex>"));
            }
            json!({"text": text})
        }
        "alertmanager" => {
            let cause = causes.first().map(|c| c.explanation.as_str());
            let now = crate::http::now_ms();
            Value::Array(alertmanager_alerts(t, Some(event), inc, (cause, link), now))
        }
        "pagerduty" => {
            let action = if event == Event::Resolved { "resolve" } else { "trigger" };
            let mut body = json!({
                "routing_key": t.routing_key,
                "event_action": action,
                "dedup_key": inc.id.to_string(),
                "payload": {
                    "summary": auspex_core::text::clip(&text(event, inc, causes), PAGERDUTY_SUMMARY_CHARS),
                    "source": "auspex",
                    "severity": inc.severity.as_str(),
                    "timestamp": auspex_core::time::format_rfc3339(inc.last_signal),
                    "custom_details": {
                        "status": inc.status.as_str(),
                        "services": inc.services,
                        "signals": inc.signal_count,
                        "flapping": inc.flapping,
                        "likely_causes": causes.iter().map(|c| &c.explanation).collect::<Vec<_>>(),
                    },
                },
            });
            if let Some(l) = link {
                body["links"] = json!([{"href": l, "text": "Open in Auspex"}]);
            }
            body
        }
        _ => {
            let mut inc = serde_json::to_value(inc).unwrap_or(Value::Null);
            if let Some(o) = inc.as_object_mut() {
                o.remove("timeline");
            }
            let mut body = json!({"version": "1", "event": event.as_str(), "incident": inc, "root_causes": causes});
            if let Some(l) = link {
                body["url"] = json!(l);
            }
            body
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(crate) fn post_once(
    url: &str,
    body: &[u8],
    sig: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(sig) = sig {
        req = req.header("X-Auspex-Signature", sig);
    }
    let resp = req.send(body).map_err(|e| e.to_string())?;
    let status = resp.status();
    if status.is_success() { Ok(()) } else { Err(format!("HTTP {status}")) }
}

/// Whether target `t` wants `event` about `inc` (its severity, event, service and label
/// filters).
pub fn wants(t: &NotifyTarget, event: Event, inc: &Incident) -> bool {
    inc.severity >= t.min_severity
        && (t.events.is_empty() || t.events.contains(&event))
        && (t.services.is_empty() || t.services.iter().any(|s| inc.services.contains(s)))
        && (t.labels.is_empty()
            || inc.signals.iter().any(|m| t.labels.iter().all(|(k, v)| m.labels.get(k) == Some(v))))
}

/// Sends one notification with retries; `Ok(attempts)` or the last error.
pub async fn deliver(
    cfg: &NotifyCfg,
    t: &NotifyTarget,
    event: Event,
    inc: &Incident,
    causes: &[Candidate],
) -> Result<u32, String> {
    if !allowed(&cfg.allow, &t.url) {
        return Err(format!("{} is not in notify.allow", t.url));
    }
    let link = incident_link(cfg, inc);
    let body = serde_json::to_vec(&payload(t, event, inc, causes, link.as_deref()))
        .map_err(|e| e.to_string())?;
    let sig = (t.kind == "webhook" && !t.secret.is_empty()).then(|| signature(&t.secret, &body));
    let mut wait = cfg.backoff;
    let mut last = String::new();
    for attempt in 0..=cfg.retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        let (url, b, s, to) = (t.url.clone(), body.clone(), sig.clone(), cfg.timeout);
        let r = tokio::task::spawn_blocking(move || post_once(&url, &b, s.as_deref(), to))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match r {
            Ok(()) => return Ok(attempt + 1),
            Err(e) => last = e,
        }
    }
    Err(format!("{} attempt(s), last: {last}", cfg.retries + 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allow_list_matches_scheme_host_port_and_path() {
        let allow = vec![
            "http://127.0.0.1:*/".to_string(),
            "https://hooks.slack.com/services/".to_string(),
        ];
        assert!(allowed(&allow, "http://127.0.0.1:9000/hook"));
        assert!(allowed(&allow, "http://127.0.0.1/x"));
        assert!(allowed(&allow, "https://hooks.slack.com/services/T/B/x"));
        assert!(allowed(&allow, "https://HOOKS.slack.com:443/services/T"));
        assert!(!allowed(&allow, "https://hooks.slack.com/other"));
        assert!(!allowed(&allow, "http://hooks.slack.com/services/T"), "scheme");
        assert!(!allowed(&allow, "https://hooks.slack.com:8443/services/T"), "port");
        assert!(!allowed(&allow, "http://169.254.169.254/latest/meta-data"));
        assert!(!allowed(&allow, "http://127.0.0.1.evil.com/"));
        assert!(!allowed(&allow, "http://user@127.0.0.1/"), "credentials");
        for climb in [
            "https://hooks.slack.com/services/../admin",
            "https://hooks.slack.com/services/T/%2e%2E/%2E%2e/admin",
            "https://hooks.slack.com/services/..\\admin",
            "https://hooks.slack.com/services/./T",
        ] {
            assert!(!allowed(&allow, climb), "dot segments: {climb}");
        }
        assert!(allowed(&allow, "https://hooks.slack.com/services/T/a..b?x=/../"), "not a segment");
        assert!(!allowed(&allow, "file:///etc/passwd"));
        assert!(!allowed(&[], "http://127.0.0.1/"), "empty list allows nothing");
    }

    /// A one-signal incident on `service` opened at 0 with `score`.
    fn incident(service: &str, score: f64) -> Incident {
        use auspex_core::{Explanation, Labels, Signal, SignalKind};
        use auspex_incidents::{Config, Correlator, Topology};
        let mut c = Correlator::new(Config::default(), Topology::default());
        let labels = Labels::from_pairs([("alertname", "X"), ("service", service)]).unwrap();
        let msg = Explanation::Text { message: String::new() };
        let s = Signal::new(SignalKind::Alert, labels, 0, score, msg);
        let id = c.observe(&s)[0].id();
        c.get(id).unwrap().clone()
    }

    #[test]
    fn alertmanager_alerts_fire_for_four_resends_and_end_lower_severities_on_escalation() {
        let cfg = crate::config::Config::parse(
            "[notify]\nallow = [\"http://127.0.0.1:*/\"]\n\
             [[notify.targets]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:1/api/v2/alerts\"\n\
             resend = \"30s\"\n",
        )
        .unwrap();
        let t = &cfg.notify.targets[0];
        let mut inc = incident("db", 1.0);
        let now = 600_000;
        let sev = |a: &Value| a["labels"]["severity"].as_str().unwrap().to_string();
        let opened = alertmanager_alerts(
            t,
            Some(Event::Opened),
            &inc,
            (Some("db is slow"), Some("http://x/ui/incidents/1")),
            now,
        );
        assert_eq!(opened.len(), 1, "{opened:#?}");
        let a = &opened[0];
        assert_eq!(a["labels"]["alertname"], "AuspexIncident");
        assert_eq!(a["labels"]["incident"], inc.id.to_string());
        assert_eq!(
            (sev(a).as_str(), a["annotations"]["likely_cause"].as_str()),
            ("critical", Some("db is slow"))
        );
        assert_eq!(a["startsAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(a["generatorURL"], "http://x/ui/incidents/1");
        assert_eq!(a["endsAt"], "1970-01-01T00:12:00.000Z", "now + 4 x 30 s");
        // Resent (no event): the same alert, its end pushed on.
        let again = alertmanager_alerts(t, None, &inc, (None, None), now + 30_000);
        assert_eq!(
            (again.len(), again[0]["endsAt"].as_str()),
            (1, Some("1970-01-01T00:12:30.000Z"))
        );
        // Escalated to critical: the info and warning alerts end now.
        let esc = alertmanager_alerts(t, Some(Event::Escalated), &inc, (None, None), now);
        let ended: Vec<(String, &str)> =
            esc[1..].iter().map(|a| (sev(a), a["endsAt"].as_str().unwrap())).collect();
        let at = "1970-01-01T00:10:00.000Z";
        assert_eq!(ended, [("info".to_string(), at), ("warning".to_string(), at)]);
        // Resolved: it ends when the incident resolved.
        inc.status = auspex_incidents::Status::Resolved;
        inc.resolved = Some(420_000);
        let res = alertmanager_alerts(t, Some(Event::Resolved), &inc, (None, None), now);
        assert_eq!(res[0]["endsAt"], "1970-01-01T00:07:00.000Z");
        assert_eq!(res.len(), 3, "lower severities end too (one may have been missed)");
        // events does not apply; resend has a floor.
        let bad = |f: &str| {
            crate::config::Config::parse(&format!(
                "[notify]\nallow = [\"http://127.0.0.1:*/\"]\n[[notify.targets]]\n\
                 kind = \"alertmanager\"\nurl = \"http://127.0.0.1:1/api/v2/alerts\"\n{f}\n"
            ))
            .unwrap_err()
            .0
        };
        assert!(bad("events = [\"opened\"]").contains("does not apply"));
        assert!(bad("resend = \"100ms\"").contains("at least 1s"));
    }

    #[test]
    fn targets_filter_by_severity_event_and_service() {
        let cfg = crate::config::Config::parse(
            "[notify]\nallow = [\"http://127.0.0.1:*/\"]\n\
             [[notify.targets]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/all\"\n\
             [[notify.targets]]\nkind = \"pagerduty\"\nurl = \"http://127.0.0.1:1/pd\"\n\
             routing_key = \"k\"\nmin_severity = \"critical\"\nevents = [\"opened\", \"resolved\"]\n\
             [[notify.targets]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/team\"\n\
             services = [\"cart\"]\n\
             [[notify.targets]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/ns\"\n\
             labels = {service = \"web\", alertname = \"X\"}\n",
        )
        .unwrap();
        let [all, pd, team, ns] = [0, 1, 2, 3].map(|i| &cfg.notify.targets[i]);
        let (warn_web, crit_cart) = (incident("web", 0.7), incident("cart", 1.0));
        assert!(wants(all, Event::Escalated, &warn_web) && wants(all, Event::Opened, &crit_cart));
        assert!(!wants(pd, Event::Opened, &warn_web), "below critical");
        assert!(wants(pd, Event::Opened, &crit_cart) && wants(pd, Event::Resolved, &crit_cart));
        assert!(!wants(pd, Event::Escalated, &crit_cart), "event not listed");
        assert!(!wants(team, Event::Opened, &warn_web) && wants(team, Event::Resolved, &crit_cart));
        assert!(wants(ns, Event::Opened, &warn_web) && !wants(ns, Event::Opened, &crit_cart));
        // Bad filters are refused when the config loads.
        let bad = |f: &str| {
            crate::config::Config::parse(&format!(
                "[[notify.targets]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/x\"\n{f}\n"
            ))
            .unwrap_err()
            .0
        };
        assert!(bad("min_severity = \"loud\"").contains("unknown variant `loud`"));
        assert!(bad("events = [\"acked\"]").contains("unknown variant `acked`"));
    }

    #[test]
    fn messages_stay_short_with_many_services() {
        use auspex_core::{Explanation, Labels, Signal, SignalKind};
        use auspex_incidents::{Config, Correlator, Topology};
        let mut c = Correlator::new(Config::default(), Topology::default());
        let mut id = None;
        for i in 0..300 {
            let svc = format!("service-with-a-rather-long-name-{i:03}");
            let labels = Labels::from_pairs([("alertname", "X"), ("service", svc.as_str())]);
            let s = Signal::new(
                SignalKind::Alert,
                labels.unwrap(),
                i,
                0.9,
                Explanation::Text { message: String::new() },
            );
            id = id.or(c.observe(&s).first().map(|ch| ch.id()));
        }
        let inc = c.get(id.unwrap()).unwrap();
        assert_eq!(inc.services.len(), 300, "co-onset: one incident");
        let cfg = crate::config::Config::parse(
            "[notify]\nallow = [\"http://127.0.0.1:*/\"]\n\
             [[notify.targets]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/s\"\n\
             [[notify.targets]]\nkind = \"pagerduty\"\nurl = \"http://127.0.0.1:1/p\"\nrouting_key = \"k\"\n",
        )
        .unwrap();
        let target = |kind: &str| cfg.notify.targets.iter().find(|t| t.kind == kind).unwrap();
        let slack = payload(target("slack"), Event::Opened, inc, &[], None);
        let text = slack["text"].as_str().unwrap();
        assert!(text.contains("service-with-a-rather-long-name-009, +290 more"), "{text}");
        assert!(!text.contains("name-010"), "{text}");
        let pd = payload(target("pagerduty"), Event::Opened, inc, &[], None);
        let summary = pd["payload"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= PAGERDUTY_SUMMARY_CHARS, "{}", summary.len());
    }

    #[test]
    fn notifications_link_to_the_incident_page_when_external_url_is_set() {
        let cfg = crate::config::Config::parse(
            "[notify]\nallow = [\"http://127.0.0.1:*/\"]\nexternal_url = \"https://auspex.example.com/\"\n\
             [[notify.targets]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/w\"\n\
             [[notify.targets]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/s\"\n\
             [[notify.targets]]\nkind = \"pagerduty\"\nurl = \"http://127.0.0.1:1/p\"\nrouting_key = \"k\"\n",
        )
        .unwrap();
        let inc = incident("db", 1.0);
        let link = incident_link(&cfg.notify, &inc).unwrap();
        assert_eq!(link, format!("https://auspex.example.com/ui/incidents/{}", inc.id));
        let [hook, slack, pd] = [0, 1, 2]
            .map(|i| payload(&cfg.notify.targets[i], Event::Opened, &inc, &[], Some(&link)));
        assert_eq!(hook["url"], link.as_str());
        assert!(slack["text"].as_str().unwrap().ends_with(&format!(" <{link}|Open in Auspex>")));
        assert_eq!(pd["links"][0]["href"], link.as_str());
        // Unset: no link anywhere.
        let plain = crate::config::Config::default();
        assert_eq!(incident_link(&plain.notify, &inc), None);
        let hook = payload(&cfg.notify.targets[0], Event::Opened, &inc, &[], None);
        assert!(hook.get("url").is_none() && !hook.to_string().contains("example.com"));
        let e =
            crate::config::Config::parse("[notify]\nexternal_url = \"auspex:9797\"").unwrap_err();
        assert!(e.0.contains("notify.external_url"), "{e}");
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

/// A benchmark, not run by default: what one Alertmanager resend of N active incidents costs,
/// and how long of it holds the correlator's lock (BENCHMARKS.md, "Alertmanager resends"):
/// `N=10000 cargo test --release -p auspex-server --lib resend_cost -- --ignored --nocapture`.
#[cfg(test)]
mod resend_cost {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    #[ignore]
    fn resend_cost() {
        use auspex_core::{Explanation, Labels, Signal, SignalKind};
        use auspex_incidents::{Config, Correlator, Topology};
        let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let cfg = Config { max_incidents: n + 10, ..Config::default() };
        let mut c = Correlator::new(cfg, Topology::default());
        for i in 0..n {
            let svc = format!("svc-{i}");
            let labels =
                Labels::from_pairs([("alertname", "X"), ("service", svc.as_str())]).unwrap();
            let msg = Explanation::Text { message: String::new() };
            c.observe(&Signal::new(SignalKind::Alert, labels, (i as i64) * 3_600_000, 0.95, msg));
        }
        let t = crate::config::Config::parse(
            "[notify]\nallow = [\"http://127.0.0.1:*/\"]\n[[notify.targets]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:1/api/v2/alerts\"\n",
        )
        .unwrap()
        .notify
        .targets
        .remove(0);
        let mut runs = Vec::new();
        for _ in 0..5 {
            let t0 = std::time::Instant::now();
            let copies = crate::incidents::active_copies(&mut c);
            let locked = t0.elapsed();
            let active: Vec<&Incident> =
                copies.iter().filter(|i| crate::incidents::announced(i)).collect();
            let alerts: Vec<Value> = active
                .iter()
                .filter(|i| wants(&t, Event::Opened, i))
                .flat_map(|i| alertmanager_alerts(&t, None, i, (Some("cause"), None), 1))
                .collect();
            let bytes: usize =
                alerts.chunks(256).map(|ch| serde_json::to_vec(ch).unwrap().len()).sum();
            runs.push((locked, t0.elapsed(), alerts.len(), bytes));
        }
        assert!(runs.iter().all(|r| r.2 == n && r.3 > n * 100), "every incident, as JSON");
        for r in &runs {
            println!(
                "incidents={n} locked={:?} with_json={:?} alerts={} bytes={}",
                r.0, r.1, r.2, r.3
            );
        }
    }
}
