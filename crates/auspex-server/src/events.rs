//! Outside signals: Alertmanager webhooks (`POST /auspex/v1/alertmanager`, payload version 4)
//! and change events (`POST /auspex/v1/events`). Both become [`Signal`]s, durable in the store
//! before the request is acknowledged.
//!
//! - An alert's signal id is derived from its labels and `startsAt`, so a redelivered webhook
//!   updates the same signal (idempotent); `resolved` sets its end. Unknown fields are ignored.
//! - A change event is `{time, kind: "deploy"|"config"|"flag", service, version?, labels?,
//!   description?}`; unknown fields are refused (400), as a typo there would lose data.

use std::collections::BTreeMap;
use std::sync::Arc;

use auspex_core::time::{NumericUnit, format_rfc3339, parse_timestamp};
use auspex_core::{Explanation, Labels, Signal, SignalKind};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::http::{App, now_ms};

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": msg}))).into_response()
}

/// The store could not take the write: the sender should retry.
fn unavailable(e: &auspex_store::StoreError) -> Response {
    let msg = format!("store: {e}");
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": msg}))).into_response()
}

/// One alert of an Alertmanager webhook.
#[derive(Debug, Deserialize)]
struct AmAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt", default)]
    ends_at: String,
}

/// The Alertmanager webhook payload (version 4); other fields are ignored.
#[derive(Debug, Deserialize)]
struct AmPayload {
    version: String,
    alerts: Vec<AmAlert>,
}

/// Alerts recently stored, with the end and score stored for them: a redelivery that changes
/// neither (Alertmanager re-sends every firing alert each `group_interval`) is acknowledged
/// without writing it again or folding it in, since both would change nothing. Bounded: two
/// generations of at most [`Seen::GENERATION`] ids each.
#[derive(Debug, Default)]
pub struct Seen {
    gens: std::sync::Mutex<[Stored; 2]>,
}

/// Signal id → the end and the highest score stored for it.
type Stored = foldhash::HashMap<u64, (Option<i64>, f64)>;

impl Seen {
    /// Ids per generation (about 40 bytes each).
    pub const GENERATION: usize = 100_000;

    /// Whether `s` is stored already with this end and at least this score.
    fn unchanged(&self, s: &Signal) -> bool {
        let g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .any(|m| m.get(&s.id.0).is_some_and(|&(end, score)| end == s.end && score >= s.score))
    }

    /// Remembers stored signals.
    fn remember(&self, signals: &[Signal]) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        for s in signals {
            if g[0].len() >= Self::GENERATION {
                g[1] = std::mem::take(&mut g[0]);
            }
            let score = g[1].get(&s.id.0).map_or(s.score, |&(_, old)| old.max(s.score));
            let score = g[0].get(&s.id.0).map_or(score, |&(_, old)| old.max(score));
            g[0].insert(s.id.0, (s.end, score));
        }
    }
}

fn ts(s: &str) -> Result<i64, &'static str> {
    parse_timestamp(s, NumericUnit::Millis).map_err(|e| e.why)
}

/// How far ahead of this server's clock an alert or change may be dated (clock skew); beyond
/// it the payload is refused, as such a time would keep an incident open for ever.
pub const MAX_AHEAD_MS: i64 = 3_600_000;

/// Refuses `t` if it is more than [`MAX_AHEAD_MS`] ahead of `now`.
fn not_ahead(what: &str, t: i64, now: i64) -> Result<i64, String> {
    if t.saturating_sub(now) > MAX_AHEAD_MS {
        return Err(format!(
            "{what} {} is more than 1h ahead of this server's clock ({}): check the sender's clock",
            format_rfc3339(t),
            format_rfc3339(now)
        ));
    }
    Ok(t)
}

/// The signal an Alertmanager alert becomes.
pub fn alert_signal(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    status: &str,
    starts_at: &str,
    ends_at: &str,
) -> Result<Signal, String> {
    if labels.is_empty() {
        // Alertmanager refuses such an alert too: with no labels it has no identity, so every
        // unlabelled alert would be one signal.
        return Err("alert has no labels: at least one (such as alertname) is needed".into());
    }
    let l = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| format!("alert labels: {e}"))?;
    let start = ts(starts_at)
        .map_err(|why| format!("alert startsAt {starts_at:?} is not a time: {why}"))?;
    let start = not_ahead("alert startsAt", start, now_ms())?;
    if !matches!(status, "firing" | "resolved" | "") {
        return Err(format!("alert status {status:?}: expected firing or resolved"));
    }
    let score = match labels.get("severity").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical" | "page" | "error") => 1.0,
        Some("warning" | "warn") => 0.7,
        Some("info" | "none") => 0.4,
        _ => 0.8,
    };
    let message = annotations
        .get("summary")
        .or_else(|| annotations.get("description"))
        .or_else(|| labels.get("alertname"))
        .cloned()
        .unwrap_or_else(|| "alert".into());
    let mut s = Signal::new(SignalKind::Alert, l, start, score, Explanation::Text { message });
    if status == "resolved" {
        s.end = Some(ts(ends_at).unwrap_or_else(|_| now_ms()).max(start));
    }
    Ok(s)
}

/// `POST /auspex/v1/alertmanager`.
pub async fn alertmanager<S: crate::mlflow::MlflowStore>(
    State(app): State<Arc<App<S>>>,
    body: Bytes,
) -> Response {
    let p: AmPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(format!("malformed Alertmanager webhook: {e}")),
    };
    if p.version != "4" {
        return bad(format!(
            "unsupported Alertmanager webhook version {:?} (expected \"4\")",
            p.version
        ));
    }
    let mut signals = Vec::with_capacity(p.alerts.len());
    for (i, a) in p.alerts.iter().enumerate() {
        match alert_signal(&a.labels, &a.annotations, &a.status, &a.starts_at, &a.ends_at) {
            Ok(s) => signals.push(s),
            Err(e) => return bad(format!("alerts[{i}]: {e}")),
        }
    }
    match accept(&app, signals).await {
        Ok(accepted) => axum::Json(json!({"accepted": accepted})).into_response(),
        Err(r) => r,
    }
}

/// Stores alert signals (those not already stored unchanged) durably, then folds them into
/// incidents; how many were accepted, or the 503 to answer.
async fn accept<S: crate::mlflow::MlflowStore>(
    app: &Arc<App<S>>,
    mut signals: Vec<Signal>,
) -> Result<usize, Response> {
    let accepted = signals.len();
    signals.retain(|s| !app.seen_alerts.unchanged(s));
    let (signals, written) = app.put_signals(signals).await;
    if let Err(e) = written {
        return Err(unavailable(&e));
    }
    app.seen_alerts.remember(&signals);
    crate::incidents::fold(app, &signals).await;
    Ok(accepted)
}

/// Alerts posted to `/api/v2/alerts` and still firing, with the `endsAt` their sender gave:
/// one not re-sent by then is ended at that time by the tick, as Alertmanager does (so an
/// alert whose Prometheus died does not fire for ever). At most [`Expiring::MAX`] are
/// tracked; alerts beyond stay firing until resolved. Not kept across restarts (a sender
/// that is alive re-sends within a minute).
#[derive(Debug, Default)]
pub struct Expiring {
    m: std::sync::Mutex<foldhash::HashMap<u64, (i64, Signal)>>,
}

impl Expiring {
    /// Most alerts tracked.
    pub const MAX: usize = 100_000;

    /// Tracks firing `s` until `ends`, or stops tracking it (`None`: resolved).
    fn note(&self, s: Signal, ends: Option<i64>) {
        let mut m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        match ends {
            Some(t) if m.len() < Self::MAX || m.contains_key(&s.id.0) => {
                m.insert(s.id.0, (t, s));
            }
            Some(_) => {}
            None => {
                m.remove(&s.id.0);
            }
        }
    }

    /// Takes the alerts whose `endsAt` has passed, ended at it.
    fn due(&self, now: i64) -> Vec<Signal> {
        let mut m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<u64> = m.iter().filter(|(_, (t, _))| *t <= now).map(|(id, _)| *id).collect();
        ids.iter()
            .filter_map(|id| m.remove(id))
            .map(|(t, mut s)| {
                s.end = Some(t.max(s.start));
                s
            })
            .collect()
    }
}

/// Ends the alerts posted to `/api/v2/alerts` that were not re-sent before their `endsAt`.
/// Run by the tick.
pub async fn expire_alerts<S: crate::mlflow::MlflowStore>(app: &Arc<App<S>>) {
    let due = app.expiring.due(now_ms());
    if !due.is_empty() {
        let n = due.len();
        if accept(app, due).await.is_err() {
            eprintln!("auspex: {n} alert(s) past their endsAt not ended: store unavailable");
        }
    }
}

/// How long a firing alert posted to `/api/v2/alerts` without an `endsAt` lasts unless
/// re-sent: Alertmanager's default `resolve_timeout`.
const RESOLVE_TIMEOUT_MS: i64 = 5 * 60_000;

/// An alert as Prometheus posts it to an Alertmanager (`postableAlert`); other fields are
/// ignored.
#[derive(Debug, Deserialize)]
struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default)]
    starts_at: String,
    #[serde(rename = "endsAt", default)]
    ends_at: String,
}

/// `POST /api/v2/alerts`: Alertmanager's own alert intake, so Prometheus (`alerting:
/// alertmanagers`) can send its alerts straight here. An alert whose `endsAt` has passed is
/// resolved, any other firing (Prometheus re-sends firing alerts with an `endsAt` ahead and
/// sends resolved ones with the time they ended) until that `endsAt`, or 5 minutes without
/// one, unless re-sent ([`Expiring`]); a missing `startsAt` is now. Answers 200
/// with no body, as Alertmanager does; errors are a JSON string.
pub async fn post_alerts<S: crate::mlflow::MlflowStore>(
    State(app): State<Arc<App<S>>>,
    body: Bytes,
) -> Response {
    let refuse = |msg: String| (StatusCode::BAD_REQUEST, axum::Json(msg)).into_response();
    let alerts: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return refuse(format!("malformed alerts: {e}")),
    };
    let now = now_ms();
    let mut signals = Vec::with_capacity(alerts.len());
    let mut ends = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.iter().enumerate() {
        let end = ts(&a.ends_at).ok();
        let ended = end.is_some_and(|end| end <= now);
        let status = if ended { "resolved" } else { "firing" };
        let starts = if a.starts_at.is_empty() { format_rfc3339(now) } else { a.starts_at.clone() };
        match alert_signal(&a.labels, &a.annotations, status, &starts, &a.ends_at) {
            Ok(s) => {
                // No endsAt: Alertmanager's default `resolve_timeout` from now.
                ends.push((!ended).then(|| end.unwrap_or(now + RESOLVE_TIMEOUT_MS)));
                signals.push(s);
            }
            Err(e) => return refuse(format!("alerts[{i}]: {e}")),
        }
    }
    // Tracked once stored: an alert refused (503) is not ended later as if it had been kept.
    let tracked: Vec<(Signal, Option<i64>)> = signals.iter().cloned().zip(ends).collect();
    match accept(&app, signals).await {
        Ok(_) => {
            for (s, end) in tracked {
                app.expiring.note(s, end);
            }
            StatusCode::OK.into_response()
        }
        Err(r) => r,
    }
}

/// A change event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeEvent {
    /// When (RFC 3339, or Unix milliseconds); now when absent.
    #[serde(default)]
    pub time: Option<serde_json::Value>,
    /// `deploy`, `config` or `flag`.
    pub kind: String,
    /// The service changed.
    pub service: String,
    /// The new version.
    #[serde(default)]
    pub version: Option<String>,
    /// More labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// The signal a change event becomes: an instant (`start == end`) of kind `change`.
pub fn change_signal(e: &ChangeEvent) -> Result<Signal, String> {
    if !matches!(e.kind.as_str(), "deploy" | "config" | "flag") {
        return Err(format!("kind {:?} must be one of deploy, config, flag", e.kind));
    }
    if e.service.trim().is_empty() {
        return Err("service must not be empty".into());
    }
    let time = match &e.time {
        None | Some(serde_json::Value::Null) => now_ms(),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|t| auspex_core::time::representable(*t))
            .ok_or("time must be whole Unix milliseconds within years 0000 to 9999")?,
        Some(serde_json::Value::String(s)) => ts(s)
            .map_err(|why| format!("time {s:?} is not RFC 3339 or Unix milliseconds: {why}"))?,
        Some(_) => return Err("time must be an RFC 3339 string or Unix milliseconds".into()),
    };
    let time = not_ahead("time", time, now_ms())?;
    let mut pairs: Vec<(String, String)> =
        e.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.retain(|(k, _)| !matches!(k.as_str(), "service" | "change_kind" | "version"));
    pairs.push(("service".into(), e.service.clone()));
    pairs.push(("change_kind".into(), e.kind.clone()));
    if let Some(v) = e.version.as_ref().filter(|v| !v.is_empty()) {
        pairs.push(("version".into(), v.clone()));
    }
    let labels = Labels::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| format!("labels: {e}"))?;
    let message = e.description.clone().unwrap_or_else(|| match &e.version {
        Some(v) => format!("{} {} {v}", e.kind, e.service),
        None => format!("{} {}", e.kind, e.service),
    });
    let mut s = Signal::new(SignalKind::Change, labels, time, 1.0, Explanation::Text { message });
    s.end = Some(time);
    Ok(s)
}

/// `POST /auspex/v1/events`.
pub async fn events<S: crate::mlflow::MlflowStore>(
    State(app): State<Arc<App<S>>>,
    body: Bytes,
) -> Response {
    let e: ChangeEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(err) => return bad(format!("malformed change event: {err}")),
    };
    let s = match change_signal(&e) {
        Ok(s) => s,
        Err(msg) => return bad(format!("change event: {msg}")),
    };
    if let (_, Err(e)) = app.put_signals(vec![s.clone()]).await {
        return unavailable(&e);
    }
    axum::Json(json!({"accepted": 1, "signal": s, "time": format_rfc3339(s.start)})).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tracked_alerts_end_at_their_ends_at_unless_re_sent_or_resolved() {
        let labels: BTreeMap<String, String> = [("alertname", "X"), ("service", "cart")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let none = BTreeMap::new();
        let s = alert_signal(&labels, &none, "firing", "2026-01-01T00:00:00Z", "").unwrap();
        let t0 = s.start;
        let e = Expiring::default();
        e.note(s.clone(), Some(t0 + 1_000));
        assert!(e.due(t0 + 999).is_empty());
        e.note(s.clone(), Some(t0 + 5_000)); // re-sent with a later endsAt
        assert!(e.due(t0 + 1_000).is_empty(), "the later endsAt counts");
        let due = e.due(t0 + 5_000);
        assert_eq!((due.len(), due[0].id, due[0].end), (1, s.id, Some(t0 + 5_000)));
        assert!(e.due(i64::MAX).is_empty(), "taken once");
        e.note(s.clone(), Some(t0 + 1));
        e.note(s.clone(), None); // resolved
        assert!(e.due(i64::MAX).is_empty());
    }

    #[test]
    fn alerts_are_idempotent_and_resolve() {
        let labels: BTreeMap<String, String> =
            [("alertname", "HighCPU"), ("severity", "critical"), ("service", "cart")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let ann = BTreeMap::from([("summary".to_string(), "cpu high".to_string())]);
        let a =
            alert_signal(&labels, &ann, "firing", "2026-01-01T10:00:00Z", "0001-01-01T00:00:00Z")
                .unwrap();
        let b = alert_signal(&labels, &ann, "firing", "2026-01-01T10:00:00Z", "").unwrap();
        assert_eq!(a.id, b.id, "a redelivery is the same signal");
        assert_eq!((a.end, a.score), (None, 1.0));
        let r =
            alert_signal(&labels, &ann, "resolved", "2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z")
                .unwrap();
        assert_eq!(r.id, a.id);
        assert_eq!(r.end, Some(a.start + 300_000));
        assert!(alert_signal(&labels, &ann, "firing", "yesterday", "").is_err());
        let e = alert_signal(&labels, &ann, "pending", "2026-01-01T10:00:00Z", "").unwrap_err();
        assert!(e.contains("expected firing or resolved"), "{e}");
        // Clock skew of minutes is fine; a start far ahead of the server's clock is refused.
        let soon = format_rfc3339(now_ms() + 5 * 60_000);
        assert!(alert_signal(&labels, &ann, "firing", &soon, "").is_ok());
        let e = alert_signal(&labels, &ann, "firing", "2999-01-01T00:00:00Z", "").unwrap_err();
        assert!(e.contains("ahead of this server's clock"), "{e}");
        let e =
            alert_signal(&BTreeMap::new(), &ann, "firing", "2026-01-01T10:00:00Z", "").unwrap_err();
        assert!(e.contains("no labels"), "{e}");
    }

    #[test]
    fn unchanged_redeliveries_are_recognised_and_the_memory_is_bounded() {
        let labels = BTreeMap::from([("alertname".to_string(), "X".to_string())]);
        let none = BTreeMap::new();
        let firing = alert_signal(&labels, &none, "firing", "2026-01-01T10:00:00Z", "").unwrap();
        let seen = Seen::default();
        assert!(!seen.unchanged(&firing), "never stored");
        seen.remember(std::slice::from_ref(&firing));
        assert!(seen.unchanged(&firing), "the same again");
        let resolved = alert_signal(
            &labels,
            &none,
            "resolved",
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:09:00Z",
        )
        .unwrap();
        assert!(!seen.unchanged(&resolved), "its end is news");
        let mut louder = firing.clone();
        louder.score = 1.0;
        assert!(!seen.unchanged(&louder), "a higher score is news");
        // Two generations at most: the oldest ids are forgotten, never more than 2 × GENERATION.
        let many: Vec<Signal> = (0..2 * Seen::GENERATION + 10)
            .map(|i| {
                let l = BTreeMap::from([("alertname".to_string(), format!("A{i}"))]);
                alert_signal(&l, &none, "firing", "2026-01-01T10:00:00Z", "").unwrap()
            })
            .collect();
        seen.remember(&many);
        let held: usize = seen.gens.lock().unwrap().iter().map(|m| m.len()).sum();
        assert!(held <= 2 * Seen::GENERATION, "{held}");
        assert!(!seen.unchanged(&firing), "forgotten: written again, which is harmless");
        assert!(seen.unchanged(many.last().unwrap()));
    }

    #[test]
    fn change_events_are_checked() {
        let ok: ChangeEvent = serde_json::from_str(
            r#"{"time":"2026-01-01T10:01:00Z","kind":"deploy","service":"cart","version":"v42"}"#,
        )
        .unwrap();
        let s = change_signal(&ok).unwrap();
        assert_eq!(s.labels.get("version"), Some("v42"));
        assert_eq!(s.end, Some(s.start));
        assert!(
            serde_json::from_str::<ChangeEvent>(r#"{"kind":"deploy","service":"a","oops":1}"#)
                .is_err()
        );
        let bad_kind: ChangeEvent =
            serde_json::from_str(r#"{"kind":"reboot","service":"a"}"#).unwrap();
        assert!(change_signal(&bad_kind).unwrap_err().contains("deploy, config, flag"));
        let bad_time: ChangeEvent =
            serde_json::from_str(r#"{"kind":"flag","service":"a","time":"soon"}"#).unwrap();
        assert!(change_signal(&bad_time).is_err());
        for far in [r#"-9000000000000000"#, r#""-9000000000000000""#] {
            let e: ChangeEvent =
                serde_json::from_str(&format!(r#"{{"kind":"flag","service":"a","time":{far}}}"#))
                    .unwrap();
            assert!(change_signal(&e).is_err(), "{far}: RFC 3339 could not write it");
        }
        let future: ChangeEvent =
            serde_json::from_str(r#"{"kind":"flag","service":"a","time":"2999-01-01T00:00:00Z"}"#)
                .unwrap();
        assert!(change_signal(&future).unwrap_err().contains("ahead of this server's clock"));
    }
}
