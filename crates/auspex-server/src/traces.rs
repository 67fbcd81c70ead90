//! OTLP/HTTP traces at `POST /v1/traces` (protobuf, or JSON with `Content-Type:
//! application/json`; plain or `Content-Encoding: gzip`). Spans build the service graph (its call edges also feed incident
//! correlation) and RED series per service and per edge, which go to the detectors like any
//! remote-write series (`auspex_service_rate{service}`, `auspex_service_error_ratio`,
//! `auspex_service_duration_ms`, and `auspex_edge_*{caller, service}`).
//! `GET /auspex/v1/services` shows the graph.

use std::sync::Arc;

use auspex_ingest::otlp::{self, OtlpError};
use auspex_ingest::remote_write;
use auspex_rca::spans::ServiceGraph;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::App;
use crate::mlflow::MlflowStore;

fn lock(m: &std::sync::Mutex<ServiceGraph>) -> std::sync::MutexGuard<'_, ServiceGraph> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refuse(code: StatusCode, json_reply: bool, msg: String) -> Response {
    if json_reply {
        (code, axum::Json(json!({"code": code.as_u16(), "message": msg}))).into_response()
    } else {
        (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg + "\n").into_response()
    }
}

/// `POST /v1/traces`.
pub async fn export<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf")
        .to_ascii_lowercase();
    let is_json = ctype.starts_with("application/json");
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_ascii_lowercase();
    let body: Bytes = match enc.as_str() {
        "identity" | "" => body,
        "gzip" => match gunzip(&body, app.cfg.traces.max_decoded_bytes) {
            Ok(b) => Bytes::from(b),
            Err((code, msg)) => return refuse(code, is_json, msg),
        },
        other => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                is_json,
                format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
            );
        }
    };
    let max = app.cfg.traces.max_spans_per_request;
    let spans = if is_json {
        otlp::decode_json(&body, max)
    } else if ctype.starts_with("application/x-protobuf")
        || ctype.starts_with("application/protobuf")
    {
        otlp::decode_protobuf(&body, max)
    } else {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            false,
            format!("Content-Type {ctype:?}: use application/x-protobuf or application/json"),
        );
    };
    let spans = match spans {
        Ok(s) => s,
        Err(e @ OtlpError::TooMany { .. }) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, is_json, e.to_string());
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, is_json, e.to_string()),
    };
    // The decompressed body is not held across the awaits below (the body budget counts the
    // body as sent), so decompressed copies in memory stay one per worker thread.
    drop(body);
    let (new_edges, red) = {
        let mut g = lock(&app.traces);
        let e = g.add(&spans);
        (e, g.take_red(false))
    };
    if !new_edges.is_empty() {
        app.incidents.learn_edges(&new_edges);
    }
    feed(&app, red).await;
    // ExportTraceServiceResponse: empty (no partial success).
    if is_json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new()).into_response()
    }
}

/// Decompresses a gzip body, refusing more than `limit` bytes of output.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, (StatusCode, String)> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    d.read_to_end(&mut out)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed gzip body: {e}")))?;
    if out.len() > limit {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("gzip body decompresses to more than {limit} bytes (traces.max_decoded_bytes)"),
        ));
    }
    Ok(out)
}

/// Emits the RED buckets that ended two buckets before `now_ms` (quiet services too).
pub async fn flush<S: MlflowStore>(app: &Arc<App<S>>, now_ms: i64) {
    let bucket = app.cfg.traces.bucket.as_nanos().min(u128::from(u64::MAX)) as u64;
    let horizon = (now_ms.max(0) as u64).saturating_mul(1_000_000).saturating_sub(2 * bucket);
    let red = lock(&app.traces).take_red_until(horizon);
    feed(app, red).await;
}

/// RED points go to the detectors like remote-write samples; their signals are stored, then
/// folded into incidents.
async fn feed<S: MlflowStore>(app: &Arc<App<S>>, red: Vec<auspex_rca::spans::RedPoint>) {
    if !red.is_empty() {
        let series: Vec<remote_write::SeriesToEncode<'_>> = red
            .iter()
            .map(|p| {
                (
                    p.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                    vec![(p.time_ms, p.value)],
                )
            })
            .collect();
        if let Ok(req) =
            remote_write::decode(&remote_write::encode(&series), &app.cfg.decode_limits())
        {
            let out = app.engine.ingest(&req);
            if !out.signals.is_empty() {
                let (signals, written) = app.put_signals(out.signals).await;
                if written.is_err() {
                    app.engine
                        .metrics
                        .store_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut p) = app.pending.lock() {
                        p.extend(signals);
                    }
                } else {
                    crate::incidents::fold(app, &signals).await;
                }
            }
        }
    }
}

/// `GET /auspex/v1/services`: the service graph from traces.
pub async fn services<S: MlflowStore>(State(app): State<Arc<App<S>>>) -> Response {
    let g = lock(&app.traces);
    let services: Vec<_> = g.services().map(|(s, n)| json!({"service": s, "spans": n})).collect();
    let edges: Vec<_> =
        g.edges().map(|(a, b, n)| json!({"from": a, "to": b, "calls": n})).collect();
    let c = g.counts;
    axum::Json(json!({
        "services": services,
        "edges": edges,
        "counts": {"spans": c.spans, "orphans": c.orphans, "relinked": c.relinked,
                   "cycles": c.cycles, "evicted": c.evicted, "late": c.late,
                   "duplicates": c.duplicates, "over_limit": c.over_limit,
                   "remembered": g.remembered()},
    }))
    .into_response()
}
