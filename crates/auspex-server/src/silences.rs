//! Silences in the server: they mute the notifications of incidents whose signals all match
//! one (see [`auspex_incidents::silence`]); what they held back is sent once no silence covers
//! the incident any more, if it is still active. Routes:
//!
//! | route | what |
//! |---|---|
//! | `POST /auspex/v1/silences` | create `{matchers, starts?, ends? \| duration?, by?, comment}` |
//! | `GET /auspex/v1/silences?state=current` | `current` (active and pending), `active`, `pending`, `expired` or `all` |
//! | `GET /auspex/v1/silences/{id}` | one silence |
//! | `POST /auspex/v1/silences/{id}/expire` | end it now |
//!
//! A silence is durable in the store before it is acknowledged. At most
//! `[notify] max_silences` are active or pending at once (more get 409), and as many expired
//! ones are kept, each for `[notify] silence_retention` (the tick lets go of older ones).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use auspex_core::time::{NumericUnit, parse_timestamp};
use auspex_incidents::silence::{Matcher, Silence, State};
use auspex_store::IncidentStore;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Axum};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{App, now_ms};
use crate::incidents::{lock, reply};
use crate::mlflow::MlflowStore;

/// The body of `POST /auspex/v1/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
    matchers: Vec<String>,
    /// RFC 3339 or Unix seconds; now when absent.
    #[serde(default)]
    starts: Option<String>,
    /// RFC 3339 or Unix seconds; or give `duration`.
    #[serde(default)]
    ends: Option<String>,
    /// From `starts`, e.g. `2h`.
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    comment: String,
}

/// A silence as the API shows it: with its state now.
fn shown(s: &Silence, now: i64) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["state"] = json!(s.state(now).as_str());
    v
}

/// A new silence id: 16 hex digits, random.
pub(crate) fn new_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Relaxed));
    h.write_i64(now_ms());
    format!("{:016x}", h.finish())
}

fn time(what: &str, s: &str) -> Result<i64, String> {
    parse_timestamp(s, NumericUnit::Seconds).map_err(|e| format!("{what} {s:?}: {e}"))
}

/// Checks a new silence's body.
fn build(b: NewSilence, now: i64) -> Result<Silence, String> {
    let matchers =
        b.matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<Vec<_>, String>>()?;
    let starts = match &b.starts {
        Some(s) => time("starts", s)?,
        None => now,
    };
    let ends = match (&b.ends, &b.duration) {
        (Some(e), None) => time("ends", e)?,
        (None, Some(d)) => {
            let d = crate::config::parse_duration(d)?;
            starts.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)
        }
        _ => return Err("give either \"ends\" or \"duration\"".into()),
    };
    let by = b.by.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "api".into());
    Silence::new(new_id(), matchers, (starts, ends), now, by, b.comment)
}

/// Drops expired silences past the retention, and the oldest expired beyond `max` kept;
/// returns their ids (to delete from the store).
fn prune(list: &mut Vec<Silence>, now: i64, retention_ms: i64, max: usize) -> Vec<String> {
    let mut expired: Vec<(i64, String)> = list
        .iter()
        .filter(|s| s.state(now) == State::Expired)
        .map(|s| (s.ends, s.id.clone()))
        .collect();
    expired.sort();
    let over = expired.len().saturating_sub(max);
    let gone: Vec<String> = expired
        .into_iter()
        .enumerate()
        .filter(|(i, (ends, _))| *i < over || *ends < now.saturating_sub(retention_ms))
        .map(|(_, (_, id))| id)
        .collect();
    list.retain(|s| !gone.contains(&s.id));
    gone
}

/// `POST /auspex/v1/silences`: 201 with the silence.
pub async fn create<S: MlflowStore>(Axum(app): Axum<Arc<App<S>>>, body: Bytes) -> Response {
    let b: NewSilence = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return reply(StatusCode::BAD_REQUEST, format!("malformed silence: {e}")),
    };
    let now = now_ms();
    let s = match build(b, now) {
        Ok(s) => s,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e),
    };
    match add(&app, s, now).await {
        Ok(s) => {
            (StatusCode::CREATED, axum::Json(json!({"silence": shown(&s, now)}))).into_response()
        }
        Err((code, why)) => reply(code, why),
    }
}

/// A copy of the silences kept (active, pending, and expired within the retention).
pub(crate) fn snapshot<S: MlflowStore>(app: &App<S>) -> Vec<Silence> {
    lock(&app.incidents.silences).clone()
}

/// Whether silence `id` is kept.
pub(crate) fn known<S: MlflowStore>(app: &App<S>, id: &str) -> bool {
    lock(&app.incidents.silences).iter().any(|s| s.id == id)
}

/// Keeps a new silence (checked): durable first, then in effect. 409 over
/// `notify.max_silences`, 503 when the store fails.
pub(crate) async fn add<S: MlflowStore>(
    app: &Arc<App<S>>,
    s: Silence,
    now: i64,
) -> Result<Silence, (StatusCode, String)> {
    let max = app.cfg.notify.max_silences;
    let live =
        lock(&app.incidents.silences).iter().filter(|s| s.state(now) != State::Expired).count();
    if live >= max {
        let why = format!(
            "{live} silences are active or pending (notify.max_silences = {max}): expire some first"
        );
        return Err((StatusCode::CONFLICT, why));
    }
    if let Err(e) = app.store.put_silence(&s).await {
        return Err((StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")));
    }
    lock(&app.incidents.silences).push(s.clone());
    tidy(app).await;
    Ok(s)
}

/// Ends silence `id` now (durable first), and sends what it held back of incidents still
/// active. 404 unknown, 409 expired already, 503 when the store fails.
pub(crate) async fn end<S: MlflowStore>(
    app: &Arc<App<S>>,
    id: &str,
    now: i64,
) -> Result<Silence, (StatusCode, String)> {
    let Some(mut s) = lock(&app.incidents.silences).iter().find(|s| s.id == id).cloned() else {
        return Err((StatusCode::NOT_FOUND, format!("no silence {id}")));
    };
    if s.state(now) == State::Expired {
        return Err((StatusCode::CONFLICT, format!("silence {id} has expired already")));
    }
    s.expire(now);
    if let Err(e) = app.store.put_silence(&s).await {
        return Err((StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")));
    }
    if let Some(slot) = lock(&app.incidents.silences).iter_mut().find(|x| x.id == id) {
        *slot = s.clone();
    }
    crate::incidents::release_withheld(app).await;
    Ok(s)
}

/// Query of `GET /auspex/v1/silences`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

/// The silences `q` asks for at `now`, soonest end first; or why `q` is wrong.
pub(crate) fn listed<S: MlflowStore>(
    app: &App<S>,
    q: &ListQuery,
    now: i64,
) -> Result<Vec<Silence>, String> {
    let want: &[State] = match q.state.as_deref().unwrap_or("current") {
        "current" | "" => &[State::Active, State::Pending],
        "active" => &[State::Active],
        "pending" => &[State::Pending],
        "expired" => &[State::Expired],
        "all" => &[State::Active, State::Pending, State::Expired],
        other => {
            return Err(format!("state {other:?}: use current, active, pending, expired or all"));
        }
    };
    let mut v: Vec<Silence> = lock(&app.incidents.silences)
        .iter()
        .filter(|s| want.contains(&s.state(now)))
        .cloned()
        .collect();
    v.sort_by(|a, b| (a.ends, &a.id).cmp(&(b.ends, &b.id)));
    Ok(v)
}

/// `GET /auspex/v1/silences`: soonest end first.
pub async fn list<S: MlflowStore>(
    Axum(app): Axum<Arc<App<S>>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let now = now_ms();
    match listed(&app, &q, now) {
        Ok(v) => {
            let v: Vec<Value> = v.iter().map(|s| shown(s, now)).collect();
            axum::Json(json!({"silences": v})).into_response()
        }
        Err(why) => reply(StatusCode::BAD_REQUEST, why),
    }
}

/// `GET /auspex/v1/silences/{id}`.
pub async fn show<S: MlflowStore>(
    Axum(app): Axum<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    let found = lock(&app.incidents.silences).iter().find(|s| s.id == id).cloned();
    match found {
        Some(s) => axum::Json(json!({"silence": shown(&s, now_ms())})).into_response(),
        None => reply(StatusCode::NOT_FOUND, format!("no silence {id}")),
    }
}

/// `POST /auspex/v1/silences/{id}/expire`: ends it now; what it held back of incidents still
/// active is sent right away. An expired one gets 409.
pub async fn expire<S: MlflowStore>(
    Axum(app): Axum<Arc<App<S>>>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    if action != "expire" {
        return reply(StatusCode::NOT_FOUND, format!("no action {action:?} (use expire)"));
    }
    let now = now_ms();
    match end(&app, &id, now).await {
        Ok(s) => axum::Json(json!({"silence": shown(&s, now)})).into_response(),
        Err((code, why)) => reply(code, why),
    }
}

/// Lets go of expired silences past the retention (or beyond the limit), in memory and in the
/// store. Run by the tick, and after a silence is made.
pub(crate) async fn tidy<S: MlflowStore>(app: &App<S>) {
    let gone = {
        let mut list = lock(&app.incidents.silences);
        prune(&mut list, now_ms(), retention_ms(&app.cfg), app.cfg.notify.max_silences)
    };
    if !gone.is_empty() && app.store.delete_silences(&gone).await.is_err() {
        app.engine.metrics.store_errors.fetch_add(1, Relaxed);
    }
}

fn retention_ms(cfg: &crate::Config) -> i64 {
    cfg.notify.silence_retention.as_millis().min(i64::MAX as u128) as i64
}

/// Silences for start-up: those not expired, and expired ones within the retention (older
/// ones are deleted from the store).
pub async fn load<S: IncidentStore>(
    store: &S,
    cfg: &crate::Config,
) -> Result<Vec<Silence>, String> {
    let (keep, now) = (retention_ms(cfg), now_ms());
    let mut list = store.load_silences(i64::MIN).await.map_err(|e| e.to_string())?;
    let gone = prune(&mut list, now, keep, cfg.notify.max_silences);
    if !gone.is_empty() {
        store.delete_silences(&gone).await.map_err(|e| e.to_string())?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(json: &str) -> Result<Silence, String> {
        build(serde_json::from_str(json).map_err(|e| e.to_string())?, 1_000_000)
    }

    #[test]
    fn bodies_are_checked() {
        let s = body(r#"{"matchers": ["service=db"], "duration": "2h", "comment": "upgrade"}"#)
            .unwrap();
        assert_eq!((s.starts, s.ends, s.created_by.as_str()), (1_000_000, 8_200_000, "api"));
        let s = body(
            r#"{"matchers": ["service=db"], "starts": "1970-01-01T00:20:00Z",
                "ends": "1970-01-01T01:00:00Z", "by": "ana", "comment": "x"}"#,
        )
        .unwrap();
        assert_eq!((s.starts, s.ends, s.created_by.as_str()), (1_200_000, 3_600_000, "ana"));
        for (bad, why) in [
            (r#"{"matchers": ["service=db"], "comment": "x"}"#, "either"),
            (
                r#"{"matchers": ["service=db"], "ends": "3600", "duration": "1h", "comment": "x"}"#,
                "either",
            ),
            (r#"{"matchers": ["service"], "duration": "1h", "comment": "x"}"#, "name=value"),
            (
                r#"{"matchers": ["service=db"], "duration": "1 fortnight", "comment": "x"}"#,
                "duration",
            ),
            (r#"{"matchers": ["service=db"], "ends": "yesterday", "comment": "x"}"#, "ends"),
            (
                r#"{"matchers": ["service=db"], "starts": "10", "ends": "60", "comment": "x"}"#,
                "past",
            ),
            (r#"{"matchers": ["service=db"], "ends": "60", "comment": "x"}"#, "after it starts"),
            (r#"{"matchers": ["service=db"], "duration": "1h", "commnet": "x"}"#, "unknown field"),
            (r#"{"matchers": ["service=db"], "duration": "1h"}"#, "comment"),
        ] {
            let e = body(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_ne!(new_id(), new_id());
        assert_eq!(new_id().len(), 16);
    }

    #[test]
    fn start_up_deletes_silences_past_the_retention() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = auspex_store::SqliteStore::memory().await.unwrap();
            let m = vec![Matcher::parse("service=db").unwrap()];
            let now = now_ms();
            let day = 86_400_000;
            for (id, ends) in [("old", now - 6 * day), ("recent", now - day), ("live", now + day)] {
                let mut s =
                    Silence::new(id.into(), m.clone(), (0, 1), 0, "a".into(), "b".into()).unwrap();
                s.ends = ends;
                store.put_silence(&s).await.unwrap();
            }
            let cfg = crate::Config::default(); // retention 5 days
            let ids = |v: Vec<Silence>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
            assert_eq!(ids(load(&store, &cfg).await.unwrap()), ["recent", "live"]);
            assert_eq!(ids(store.load_silences(i64::MIN).await.unwrap()), ["recent", "live"]);
        });
    }

    #[test]
    fn expired_silences_are_kept_for_the_retention_and_up_to_the_limit() {
        let m = vec![Matcher::parse("service=db").unwrap()];
        let mk = |id: &str, ends: i64| {
            let mut s =
                Silence::new(id.into(), m.clone(), (0, 10_000), 0, "a".into(), "b".into()).unwrap();
            s.ends = ends;
            s
        };
        let mut list = vec![mk("old", 100), mk("a", 5_000), mk("b", 6_000), mk("live", 50_000)];
        // Now 10,000, kept 7,000: "old" ended too long ago.
        assert_eq!(prune(&mut list, 10_000, 7_000, 5), vec!["old".to_string()]);
        // At most one expired kept: the oldest goes.
        assert_eq!(prune(&mut list, 10_000, 7_000, 1), vec!["a".to_string()]);
        let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "live"]);
    }
}
