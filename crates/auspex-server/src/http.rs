//! HTTP routes. Standard protocols keep their standard paths; our own API is under
//! `/auspex/v1/`.
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/write` | Prometheus remote-write 1.0 |
//! | `POST /v1/traces` | OTLP/HTTP traces, protobuf or JSON (`traces.rs`) |
//! | `GET /auspex/v1/services` | the service graph from traces |
//! | `POST /auspex/v1/alertmanager` | Alertmanager webhooks (v4) become alert signals |
//! | `POST /auspex/v1/events` | change events (deploy, config, flag) become change signals |
//! | `GET /auspex/v1/signals?since=24h&limit=1000` | signals, newest first (Signal JSON v1) |
//! | `GET /auspex/v1/series?limit=10000` | series with their state |
//! | `/auspex/v1/incidents[/{id}[/ack\|/resolve]]` | incidents (`incidents.rs`) |
//! | `/auspex/v1/silences[/{id}[/expire]]` | silences: mute matching incidents' notifications (`silences.rs`) |
//! | `POST /auspex/v1/admin/pause-ingest?seconds=N` | shed writes (503) for N seconds |
//! | `GET /auspex/v1/models/{name}/versions/{v}/lineage` | a model version's lineage and audit |
//! | `/api/2.0/mlflow/...`, `/ajax-api/2.0/mlflow/...` | the MLflow REST API (`mlflow.rs`) |
//! | `/api/2.0/mlflow-artifacts/artifacts/...` | the MLflow artifact proxy (`artifacts.rs`) |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /health` | 200 when serving |

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use auspex_core::Signal;
use auspex_core::time::format_rfc3339;
use auspex_ingest::remote_write::{self, DecodeError};
use auspex_store::Store;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::config::{Config, parse_duration};
use crate::engine::Engine;
use crate::metrics::escape_label;

/// Shared state of the routes.
#[derive(Debug)]
pub struct App<S> {
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: S,
    /// The MLflow artifact proxy's store (`None`: artifact serving off).
    pub artifacts: Option<crate::artifacts::Artifacts>,
    /// The configuration.
    pub cfg: Config,
    /// Write concurrency limit.
    pub inflight: Semaphore,
    /// Request-body budget, KiB (`limits.max_inflight_body_bytes`).
    pub bodies: Semaphore,
    /// Open connections (`limits.max_connections`).
    pub connections: Arc<crate::listener::Connections>,
    /// Writes are shed until this Unix time, ms.
    pub paused_until: AtomicI64,
    /// Signals whose write failed, retried by the snapshot worker.
    pub pending: std::sync::Mutex<Vec<Signal>>,
    /// Incident correlation.
    pub incidents: crate::incidents::Hub,
    /// Alerts stored recently (redeliveries that change nothing are not written again).
    pub seen_alerts: crate::events::Seen,
    /// Alerts posted to `/api/v2/alerts`, to end if not re-sent before their `endsAt`.
    pub expiring: crate::events::Expiring,
    /// The service graph from traces.
    pub traces: std::sync::Mutex<auspex_rca::spans::ServiceGraph>,
    /// Concurrent signal writes share transactions.
    pub signal_writes: auspex_store::GroupCommit,
}

impl<S: auspex_store::Store> App<S> {
    /// Makes `signals` durable (sharing a transaction with concurrent writers) and hands
    /// them back with the outcome.
    pub async fn put_signals(
        &self,
        signals: Vec<Signal>,
    ) -> (Vec<Signal>, Result<(), auspex_store::StoreError>) {
        self.signal_writes.put_signals(&self.store, signals).await
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The router.
pub fn router<S: crate::mlflow::MlflowStore>(app: Arc<App<S>>) -> Router {
    crate::amapi::mark_start();
    use crate::{artifacts, mlflow};
    use axum::routing::any;
    let max_body = app.cfg.limits.max_body_bytes;
    let max_traces = app.cfg.traces.max_body_bytes;
    let max_json = app.cfg.mlflow.max_request_bytes;
    let guard = |refuse: Refuse, reserve: bool| {
        axum::middleware::from_fn_with_state((app.clone(), refuse, reserve), body_guard)
    };
    // MLflow's routes refuse in MLflow's error format, as they answer everything else.
    let ml = any(mlflow::dispatch::<S>)
        .layer(DefaultBodyLimit::max(max_json))
        .layer(guard(mlflow::refusal, true));
    Router::new()
        .route("/auspex/v1/models/{name}/versions/{version}/lineage", get(mlflow::lineage::<S>))
        .route("/version", get(|| async { concat!(env!("CARGO_PKG_VERSION"), "\n") }))
        .route("/api/v1/write", post(write::<S>).layer(DefaultBodyLimit::max(max_body)))
        .route(
            "/auspex/v1/alertmanager",
            post(crate::events::alertmanager::<S>).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/auspex/v1/events",
            post(crate::events::events::<S>).layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/auspex/v1/signals", get(signals::<S>))
        .route(
            "/v1/traces",
            post(crate::traces::export::<S>).layer(DefaultBodyLimit::max(max_traces)),
        )
        .route("/auspex/v1/services", get(crate::traces::services::<S>))
        .route("/auspex/v1/incidents", get(crate::incidents::list::<S>))
        .route("/auspex/v1/incidents/{id}", get(crate::incidents::show::<S>))
        .route("/auspex/v1/incidents/{id}/{action}", post(crate::incidents::action::<S>))
        .route(
            "/auspex/v1/silences",
            get(crate::silences::list::<S>).post(crate::silences::create::<S>),
        )
        .route("/auspex/v1/silences/{id}", get(crate::silences::show::<S>))
        .route("/auspex/v1/silences/{id}/{action}", post(crate::silences::expire::<S>))
        .route("/ui", get(|| async { axum::response::Redirect::to("/ui/incidents") }))
        .route("/ui/incidents", get(crate::ui::incidents_page::<S>))
        .route("/ui/incidents/{id}", get(crate::ui::incident_page::<S>))
        .route("/ui/silences", get(crate::ui::silences_page::<S>))
        // Alertmanager's silence API (`amtool`, Grafana), documented by Alertmanager.
        .route("/api/v2/status", get(crate::amapi::status))
        .route(
            "/api/v2/alerts",
            post(crate::events::post_alerts::<S>).layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/api/v2/silences", get(crate::amapi::list::<S>).post(crate::amapi::post::<S>))
        .route(
            "/api/v2/silence/{id}",
            get(crate::amapi::get::<S>).delete(crate::amapi::delete::<S>),
        )
        .route("/auspex/v1/series", get(series::<S>))
        .route("/auspex/v1/admin/pause-ingest", post(pause::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/health", get(|| async { "ok\n" }))
        .route("/auspex/v1/openapi.json", get(openapi))
        // Every route above reads whole bodies into memory, and so do MLflow's (their own
        // layer); the artifact routes stream (uploads: `mlflow.max_inflight_uploads`), so
        // they reserve nothing, but their bodies are paced too.
        .route_layer(guard(refusal, true))
        .route("/api/2.0/mlflow/{*rest}", ml.clone())
        .route("/api/3.0/mlflow/{*rest}", ml.clone())
        .route("/ajax-api/2.0/mlflow/{*rest}", ml.clone())
        .route("/ajax-api/3.0/mlflow/{*rest}", ml)
        .route("/api/2.0/mlflow-artifacts/artifacts", get(artifacts::list::<S>))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::get::<S>)
                .put(artifacts::put::<S>)
                .delete(artifacts::delete::<S>)
                .layer(DefaultBodyLimit::disable())
                .layer(guard(mlflow::refusal, false)),
        )
        .with_state(app.clone())
        .layer(axum::middleware::map_response_with_state(app, count_too_large::<S>))
}

/// Bodies over the limit are refused by the body-limit layer before the handler runs; count
/// them here.
async fn count_too_large<S: Store>(State(app): State<Arc<App<S>>>, r: Response) -> Response {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        app.engine.metrics.writes_too_large.fetch_add(1, Relaxed);
    }
    r
}

/// The body limit of routes without one of their own (axum's default).
pub const OTHER_BODY_BYTES: usize = 2 << 20;

/// KiB of the body budget a request reserves before its body is read: its `Content-Length`,
/// or, sent in chunks, the most any request can hold; at most that.
fn body_kib(headers: &axum::http::HeaderMap, most: usize) -> u32 {
    let len = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(u64::MAX),
        None if headers.contains_key(header::TRANSFER_ENCODING) => u64::MAX,
        None => 0,
    };
    let bytes = len.min(most as u64);
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Makes a refusal (503 with `Retry-After`, or 408) in a route's own error format.
type Refuse = fn(StatusCode, &'static str) -> Response;

/// Guards a route's request bodies:
/// - **Pace** (`limits.request_body_timeout`, `limits.request_body_min_rate`): a body must
///   arrive within the timeout of the server starting to read it, plus one second per
///   `min_rate` bytes received; a slower one is cut off and answered 408, and the connection
///   closed, so a client trickling bytes cannot hold a connection, an upload slot or its
///   reservation for long.
/// - **Budget** (`reserve`): bounds the request bodies held in memory at once, across every
///   route: a request reserves its body's size first, and one that does not fit now is
///   answered 503 with `Retry-After` without its body being kept (Prometheus, Alertmanager,
///   OTLP exporters and the mlflow client retry). The reservation is held until the response
///   is made.
///
/// `refuse` makes the answers in the route's own error format.
async fn body_guard<S: Store>(
    State((app, refuse, reserve)): State<(Arc<App<S>>, Refuse, bool)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use http_body::Body as _;
    let l = &app.cfg.limits;
    let mut slow = None;
    let req = if l.request_body_min_rate > 0 && !req.body().is_end_stream() {
        let flag = slow.insert(Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let (parts, body) = req.into_parts();
        let body = Paced {
            inner: body,
            grace: l.request_body_timeout,
            min_rate: l.request_body_min_rate,
            started: None,
            received: 0,
            timer: None,
            slow: flag.clone(),
        };
        axum::extract::Request::from_parts(parts, axum::body::Body::new(body))
    } else {
        req
    };
    let res = if reserve { budgeted(&app, refuse, req, next).await } else { next.run(req).await };
    if !slow.is_some_and(|s| s.load(Relaxed)) {
        return res;
    }
    app.connections.slow_bodies.fetch_add(1, Relaxed);
    let mut r = refuse(
        StatusCode::REQUEST_TIMEOUT,
        "request body too slow: it must arrive within limits.request_body_timeout plus 1 s \
         per limits.request_body_min_rate bytes",
    );
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn budgeted<S: Store>(
    app: &App<S>,
    refuse: Refuse,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let most = app.cfg.largest_body().0;
    let kib = body_kib(req.headers(), most);
    if kib == 0 {
        return next.run(req).await;
    }
    let Ok(_held) = app.bodies.try_acquire_many(kib) else {
        app.engine.metrics.bodies_shed.fetch_add(1, Relaxed);
        discard_body(req, most).await;
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded: too many request bodies in flight (limits.max_inflight_body_bytes), \
             retry after 1 s",
        );
    };
    next.run(req).await
}

/// A request body that fails once it falls behind its pace (see [`body_guard`]).
struct Paced {
    inner: axum::body::Body,
    grace: std::time::Duration,
    min_rate: u64,
    /// When the server first asked for the body.
    started: Option<tokio::time::Instant>,
    received: u64,
    /// Set to the deadline while the body waits for data.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Set when the body was cut off, for the layer to answer 408.
    slow: Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(tokio::time::Instant::now);
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let earned = (this.received as f64 / this.min_rate as f64).min(YEAR_SECS);
                let deadline = started + this.grace + std::time::Duration::from_secs_f64(earned);
                let timer =
                    this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    this.slow.store(true, Relaxed);
                    return Poll::Ready(Some(Err(axum::Error::new("request body too slow"))));
                }
                Poll::Pending
            }
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A cap on the time a body's bytes earn, so the deadline cannot overflow.
const YEAR_SECS: f64 = 365.0 * 86_400.0;

/// Reads and drops up to `most` bytes of a refused request's body, a chunk at a time, so a
/// client that sends its whole body before reading the answer gets the answer instead of a
/// reset connection. A client that asked `Expect: 100-continue` was told nothing yet, and sends
/// nothing: it gets the answer at once.
async fn discard_body(req: axum::extract::Request, most: usize) {
    use futures_util::StreamExt;
    if req.headers().contains_key(header::EXPECT) {
        return;
    }
    let mut body = req.into_body().into_data_stream();
    let mut read = 0;
    while read < most {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
}

/// The OpenAPI 3.1 document of the routes above (MLflow's are MLflow's), `openapi.json`; a
/// test checks it names exactly the routes here, and one validates it with
/// `openapi-spec-validator`.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn text(code: StatusCode, msg: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg + "\n").into_response()
}

fn shed() -> Response {
    refusal(StatusCode::SERVICE_UNAVAILABLE, "overloaded: write shed, retry after 1 s")
}

/// A plain-text refusal; a 503 carries `Retry-After: 1`.
fn refusal(code: StatusCode, msg: &str) -> Response {
    let mut r = text(code, msg.to_string());
    if code == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

async fn write<S: crate::mlflow::MlflowStore>(
    State(app): State<Arc<App<S>>>,
    body: Bytes,
) -> Response {
    let m = &app.engine.metrics;
    if now_ms() < app.paused_until.load(Relaxed) {
        m.writes_shed.fetch_add(1, Relaxed);
        return shed();
    }
    let Ok(_permit) = app.inflight.try_acquire() else {
        m.writes_shed.fetch_add(1, Relaxed);
        return shed();
    };
    let l = &app.cfg.limits;
    let decoded = match remote_write::decode(&body, &app.cfg.decode_limits()) {
        Ok(d) => d,
        Err(e @ DecodeError::TooLarge { .. }) => {
            m.writes_too_large.fetch_add(1, Relaxed);
            return text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
        Err(e) => {
            m.writes_bad.fetch_add(1, Relaxed);
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    m.samples_received.fetch_add(decoded.sample_count() as u64, Relaxed);
    let mut out = app.engine.ingest(&decoded);
    // Not held across the writes below: decoded requests in memory stay one per worker.
    drop(decoded);
    let (signals, written) = app.put_signals(std::mem::take(&mut out.signals)).await;
    if written.is_err() {
        // Durable before visible: keep them for the worker and make the sender retry.
        m.store_errors.fetch_add(1, Relaxed);
        if let Ok(mut p) = app.pending.lock() {
            p.extend(signals);
        }
        m.writes_shed.fetch_add(1, Relaxed);
        return shed();
    }
    crate::incidents::fold(&app, &signals).await;
    let mut problems = Vec::new();
    if out.invalid_series > 0 {
        problems.push(format!(
            "{} series rejected ({} samples); first: {}",
            out.invalid_series,
            out.invalid_samples,
            out.first_invalid.unwrap_or_default()
        ));
    }
    if out.out_of_range_samples > 0 {
        problems.push(format!(
            "{} samples dropped: timestamp outside years 0000 to 9999",
            out.out_of_range_samples
        ));
    }
    if out.refused_series > 0 {
        problems.push(format!(
            "{} new series refused: limit of {} active series reached (limits.max_active_series)",
            out.refused_series, l.max_active_series
        ));
    }
    if problems.is_empty() {
        m.writes_ok.fetch_add(1, Relaxed);
        StatusCode::NO_CONTENT.into_response()
    } else {
        m.writes_bad.fetch_add(1, Relaxed);
        text(StatusCode::BAD_REQUEST, problems.join("; "))
    }
}

#[derive(Debug, Deserialize)]
struct SignalsQuery {
    since: Option<String>,
    limit: Option<usize>,
}

async fn signals<S: Store>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<SignalsQuery>,
) -> Response {
    let since = match q
        .since
        .as_deref()
        .map(parse_duration)
        .unwrap_or(Ok(std::time::Duration::from_secs(86_400)))
    {
        Ok(d) => d,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad since: {e}")),
    };
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let from = now_ms().saturating_sub(since.as_millis().min(i64::MAX as u128) as i64);
    match app.store.list_signals(from, limit).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}")),
    }
}

#[derive(Debug, Deserialize)]
struct SeriesQuery {
    limit: Option<usize>,
}

async fn series<S: Store>(
    State(app): State<Arc<App<S>>>,
    Query(q): Query<SeriesQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(10_000).min(1_000_000);
    let mut views = app.engine.views();
    // Idle series live only in the store.
    if let Ok(stored) = app.store.list_series(limit).await {
        let in_memory: std::collections::HashSet<auspex_core::SeriesId> =
            views.iter().map(|v| v.labels.series_id()).collect();
        for r in stored.into_iter().filter(|r| r.idle) {
            if !in_memory.contains(&r.id) {
                views.push(crate::engine::SeriesView {
                    labels: r.labels,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    samples: r.samples,
                    state: "idle",
                    last_score: r.last_score,
                });
            }
        }
    }
    views.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.labels.cmp(&b.labels)));
    views.truncate(limit);
    let out: Vec<serde_json::Value> = views
        .into_iter()
        .map(|v| {
            serde_json::json!({
                "labels": v.labels,
                "first_seen": format_rfc3339(v.first_seen),
                "last_seen": if v.last_seen == i64::MIN { serde_json::Value::Null } else { format_rfc3339(v.last_seen).into() },
                "samples": v.samples,
                "state": v.state,
                "last_score": v.last_score,
            })
        })
        .collect();
    Json(out).into_response()
}

#[derive(Debug, Deserialize)]
struct PauseQuery {
    seconds: f64,
}

async fn pause<S: Store>(State(app): State<Arc<App<S>>>, Query(q): Query<PauseQuery>) -> Response {
    if !(0.0..=3600.0).contains(&q.seconds) {
        return text(StatusCode::BAD_REQUEST, "seconds must be within [0, 3600]".to_string());
    }
    let until = now_ms() + (q.seconds * 1000.0) as i64;
    app.paused_until.store(until, Relaxed);
    text(StatusCode::OK, format!("ingest paused until {}", format_rfc3339(until)))
}

async fn metrics<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    let mc = &app.cfg.metrics;
    let mut extra = String::from(
        "# HELP auspex_anomaly_score Latest anomaly score of the most anomalous series.\n\
         # TYPE auspex_anomaly_score gauge\n",
    );
    for (labels, score) in app.engine.top_scores(mc.anomaly_score_min, mc.anomaly_score_max_series)
    {
        let name = labels.metric_name().unwrap_or("");
        extra.push_str("auspex_anomaly_score{series_name=\"");
        extra.push_str(&escape_label(name));
        extra.push('"');
        for (k, v) in labels.iter().filter(|(k, _)| *k != "__name__") {
            extra.push(',');
            extra.push_str(k);
            extra.push_str("=\"");
            extra.push_str(&escape_label(v));
            extra.push('"');
        }
        extra.push_str(&format!("}} {score}\n"));
    }
    app.incidents.render_metrics(&mut extra);
    let c = &app.connections;
    extra.push_str(&format!(
        "# HELP auspex_http_connections Connections open (at most limits.max_connections).\n\
         # TYPE auspex_http_connections gauge\nauspex_http_connections {}\n\
         # HELP auspex_http_connections_idle_closed_total Connections closed after \
         limits.connection_idle_timeout without a byte.\n\
         # TYPE auspex_http_connections_idle_closed_total counter\n\
         auspex_http_connections_idle_closed_total {}\n\
         # HELP auspex_http_header_timeouts_total Connections closed without a request's \
         complete headers within limits.header_read_timeout (slow, or idle keep-alive).\n\
         # TYPE auspex_http_header_timeouts_total counter\n\
         auspex_http_header_timeouts_total {}\n\
         # HELP auspex_http_slow_bodies_total Requests answered 408: the body fell behind \
         limits.request_body_min_rate.\n\
         # TYPE auspex_http_slow_bodies_total counter\nauspex_http_slow_bodies_total {}\n\
         # HELP auspex_http_connections_over_address_limit_total Connections closed at once: \
         their address held limits.max_connections_per_address.\n\
         # TYPE auspex_http_connections_over_address_limit_total counter\n\
         auspex_http_connections_over_address_limit_total {}\n",
        c.open(),
        c.idle_closed.load(Relaxed),
        c.header_timeouts.load(Relaxed),
        c.slow_bodies.load(Relaxed),
        c.over_address_limit.load(Relaxed),
    ));
    if let Some(a) = &app.artifacts {
        a.render_metrics(&mut extra);
    }
    let budget = app.cfg.limits.max_inflight_body_bytes.div_ceil(1024);
    let held = budget.saturating_sub(app.bodies.available_permits()) as u64 * 1024;
    extra.push_str(&format!(
        "# HELP auspex_http_body_bytes_reserved Request-body bytes reserved by requests in \
         flight (at most limits.max_inflight_body_bytes).\n\
         # TYPE auspex_http_body_bytes_reserved gauge\nauspex_http_body_bytes_reserved {held}\n"
    ));
    let body = app.engine.metrics.render(app.engine.active(), &extra);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::body_kib;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_static(v))).collect()
    }

    /// A request reserves its Content-Length in KiB, rounded up; chunked or unreadable, the
    /// most any request can hold; without a body, nothing; never more than the most.
    #[test]
    fn a_request_reserves_its_body_size() {
        let most = 10 << 20;
        assert_eq!(body_kib(&headers(&[(header::CONTENT_LENGTH, "1025")]), most), 2);
        assert_eq!(body_kib(&headers(&[(header::CONTENT_LENGTH, "0")]), most), 0);
        assert_eq!(body_kib(&headers(&[]), most), 0);
        assert_eq!(body_kib(&headers(&[(header::TRANSFER_ENCODING, "chunked")]), most), 10240);
        assert_eq!(body_kib(&headers(&[(header::CONTENT_LENGTH, "lots")]), most), 10240);
        assert_eq!(body_kib(&headers(&[(header::CONTENT_LENGTH, "99999999999")]), most), 10240);
    }

    /// The OpenAPI document names exactly the routes of the router, each with its methods
    /// (MLflow's, the artifact store's and the pages under /ui are not in it).
    #[test]
    fn the_openapi_document_matches_the_routes() {
        use std::collections::BTreeSet;
        let src = include_str!("http.rs");
        let router =
            &src[src.find("Router::new()").unwrap()..src.find(".with_state(app.clone())").unwrap()];
        let mut routed = BTreeSet::new();
        for seg in router.split(".route(").skip(1) {
            let path = seg.split('"').nth(1).unwrap().to_string();
            // MLflow's and Alertmanager's routes are documented by them.
            if ["/ui", "/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/", "/api/v2/"]
                .iter()
                .any(|p| path.starts_with(p))
            {
                continue;
            }
            for m in ["get", "post", "put", "delete"] {
                let call = format!("{m}(");
                let found = seg.match_indices(&call).any(|(i, _)| {
                    i == 0
                        || !seg.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && seg.as_bytes()[i - 1] != b'_'
                });
                if found {
                    routed.insert(format!("{} {path}", m.to_uppercase()));
                }
            }
        }
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for m in ops.as_object().unwrap().keys() {
                documented.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
        assert!(routed.len() >= 20, "{routed:?}");
        assert_eq!(routed, documented);
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }
}
