//! Alertmanager's own silence API (v2), so `amtool` and other Alertmanager clients (Grafana's
//! Alertmanager data source) manage Auspex's silences unchanged:
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v2/status` | a status, enough for clients that ask first (as `amtool` does) |
//! | `GET /api/v2/silences?filter=m` | every silence kept, with its state; `filter`: label matchers a silence's matchers must match |
//! | `POST /api/v2/silences` | create (or, with `id`, replace: the old one is expired, as Alertmanager does); `{"silenceID"}` |
//! | `GET /api/v2/silence/{id}` | one silence |
//! | `DELETE /api/v2/silence/{id}` | expire it |
//!
//! The bodies are Alertmanager's (`postableSilence`, `gettableSilence`, matchers as
//! `{name, value, isRegex, isEqual}`); errors are a JSON string, as Alertmanager sends them.
//! The same silences as `/auspex/v1/silences`, with the same checks and limits.

use std::sync::{Arc, OnceLock};

use auspex_core::Labels;
use auspex_core::time::{NumericUnit, format_rfc3339, parse_timestamp};
use auspex_incidents::silence::{Matcher, Op, Silence};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{App, now_ms};
use crate::mlflow::MlflowStore;

/// When the server started (for the status's `uptime`).
static STARTED: OnceLock<i64> = OnceLock::new();

/// Notes the start time; called when the router is built.
pub fn mark_start() {
    STARTED.get_or_init(now_ms);
}

fn error(code: StatusCode, msg: String) -> Response {
    (code, axum::Json(Value::String(msg))).into_response()
}

/// A matcher as Alertmanager writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmMatcher {
    name: String,
    value: String,
    #[serde(default)]
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

impl AmMatcher {
    fn to_matcher(&self) -> Result<Matcher, String> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        };
        let v = self.value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        Matcher::parse(&format!("{}{op}\"{v}\"", self.name))
    }
}

fn am_matcher(m: &Matcher) -> Value {
    json!({
        "name": m.name,
        "value": m.value,
        "isRegex": matches!(m.op, Op::Re | Op::NotRe),
        "isEqual": matches!(m.op, Op::Eq | Op::Re),
    })
}

/// Alertmanager's `postableSilence`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<AmMatcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// Alertmanager's `gettableSilence`.
fn gettable(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": format_rfc3339(s.updated),
        "matchers": s.matchers.iter().map(am_matcher).collect::<Vec<_>>(),
        "startsAt": format_rfc3339(s.starts),
        "endsAt": format_rfc3339(s.ends),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

fn build(b: &PostableSilence, now: i64) -> Result<Silence, String> {
    let matchers = b.matchers.iter().map(AmMatcher::to_matcher).collect::<Result<Vec<_>, _>>()?;
    let time = |what: &str, s: &str| {
        parse_timestamp(s, NumericUnit::Seconds).map_err(|e| format!("{what} {s:?}: {e}"))
    };
    // Alertmanager starts a silence dated in the past now.
    let starts = time("startsAt", &b.starts_at)?.max(now);
    let ends = time("endsAt", &b.ends_at)?;
    let by = if b.created_by.trim().is_empty() { "alertmanager-api" } else { &b.created_by };
    let id = crate::silences::new_id();
    Silence::new(id, matchers, (starts, ends), now, by.to_string(), b.comment.clone())
}

/// `GET /api/v2/status`.
pub async fn status() -> Response {
    let started = *STARTED.get_or_init(now_ms);
    axum::Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": concat!("auspex-", env!("CARGO_PKG_VERSION")),
            "branch": "", "buildDate": "", "buildUser": "", "goVersion": "", "revision": "",
        },
        "config": {"original": ""},
        "uptime": format_rfc3339(started),
    }))
    .into_response()
}

/// `POST /api/v2/silences`.
pub async fn post<S: MlflowStore>(State(app): State<Arc<App<S>>>, body: Bytes) -> Response {
    let b: PostableSilence = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed silence: {e}")),
    };
    let now = now_ms();
    let s = match build(&b, now) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("silence invalid: {e}")),
    };
    // A replacement: the old one must exist; it is expired once the new one is kept.
    let old = b.id.as_deref().filter(|id| !id.is_empty());
    if let Some(id) = old
        && !crate::silences::known(&app, id)
    {
        return error(StatusCode::NOT_FOUND, format!("silence {id} not found"));
    }
    let s = match crate::silences::add(&app, s, now).await {
        Ok(s) => s,
        Err((code, why)) => return error(code, why),
    };
    if let Some(id) = old
        && let Err((code, why)) = crate::silences::end(&app, id, now).await
        && code != StatusCode::CONFLICT
    {
        return error(code, why);
    }
    axum::Json(json!({"silenceID": s.id})).into_response()
}

/// `GET /api/v2/silences`: every silence kept; `filter` (repeatable) keeps those whose matchers
/// all hold for the labels the filter's equality matchers name.
pub async fn list<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut filters = Vec::new();
    for (k, v) in q {
        if k == "filter" {
            match Matcher::parse(&v) {
                Ok(m) => filters.push(m),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad filter: {e}")),
            }
        }
    }
    let pairs = filters.iter().filter(|m| m.op == Op::Eq);
    let labels = match Labels::from_pairs(pairs.map(|m| (m.name.as_str(), m.value.as_str()))) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad filter: {e}")),
    };
    let now = now_ms();
    let all = crate::silences::snapshot(&app);
    let shown: Vec<Value> = all
        .iter()
        .filter(|s| filters.is_empty() || s.matches(&labels))
        .map(|s| gettable(s, now))
        .collect();
    axum::Json(shown).into_response()
}

/// `GET /api/v2/silence/{id}`.
pub async fn get<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    match crate::silences::snapshot(&app).into_iter().find(|s| s.id == id) {
        Some(s) => axum::Json(gettable(&s, now_ms())).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

/// `DELETE /api/v2/silence/{id}`.
pub async fn delete<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Response {
    match crate::silences::end(&app, &id, now_ms()).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err((code, why)) => error(code, why),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matchers_convert_both_ways() {
        for (regex, equal, text) in [
            (false, true, r#"service="a \"b\"""#),
            (false, false, r#"service!="a \"b\"""#),
            (true, true, r#"service=~"a \"b\"""#),
            (true, false, r#"service!~"a \"b\"""#),
        ] {
            let am = AmMatcher {
                name: "service".into(),
                value: "a \"b\"".into(),
                is_regex: regex,
                is_equal: equal,
            };
            let m = am.to_matcher().unwrap();
            assert_eq!(m.to_string(), text);
            let back = am_matcher(&m);
            assert_eq!(
                back,
                json!({"name": "service", "value": "a \"b\"", "isRegex": regex, "isEqual": equal})
            );
        }
        let bad =
            AmMatcher { name: "1x".into(), value: "v".into(), is_regex: false, is_equal: true };
        assert!(bad.to_matcher().is_err());
    }
}
