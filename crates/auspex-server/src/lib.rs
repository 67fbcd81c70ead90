//! The Auspex server: wires ingestion, detection and the store behind one listen address.
//! The only crate that knows HTTP.
//!
//! - [`config`]: the TOML configuration and its validation.
//! - [`engine`]: per-series detectors, sharded; signals raised by them.
//! - [`http`]: the axum routes.
//! - [`metrics`]: internal metrics in the Prometheus text format.
//!
//! Durability: a write is acknowledged only after the signals it raised are committed to the
//! store, so a signal is never visible (API, `/metrics`) before it is durable. Models are
//! snapshotted every `series.snapshot_interval` (default 30 s), only the series changed since
//! the last snapshot: a crash loses at most that interval of model updates, never a signal.

pub mod amapi;
pub mod artifacts;
pub mod config;
pub mod engine;
pub mod events;
pub mod http;
pub mod incidents;
pub mod listener;
pub mod metrics;
pub mod mlflow;
pub mod notify;
pub mod silences;
pub mod traces;
pub mod ui;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use auspex_detect::Config as DetectorConfig;
use auspex_store::SqliteStore;
use mlflow::MlflowStore;
use tokio::sync::Semaphore;

pub use config::Config;
use engine::Engine;
use http::App;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {why}")]
    Store {
        /// Data dir.
        dir: String,
        /// Why.
        why: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {why} (is another process using it?)")]
    Bind {
        /// Address.
        addr: String,
        /// Why.
        why: String,
    },
    /// The configuration cannot be used (e.g. an unreadable topology file).
    #[error("{0}")]
    Config(String),
    /// The server stopped with an IO error.
    #[error("server error: {0}")]
    Io(String),
}

/// Opens the SQLite store under `data_dir` and serves until SIGINT/SIGTERM.
pub async fn serve(listen: &str, data_dir: &Path, cfg: Config) -> Result<(), ServeError> {
    let full_sync = cfg.store.synchronous != "normal";
    let store = SqliteStore::open_with(data_dir, full_sync).await.map_err(|e| {
        ServeError::Store { dir: data_dir.display().to_string(), why: e.to_string() }
    })?;
    let max = cfg.mlflow.max_artifact_bytes;
    let artifacts = if cfg.mlflow.artifacts_destination.is_empty() {
        artifacts::Artifacts::local(data_dir.join("artifacts"), max).map_err(|e| {
            ServeError::Store {
                dir: data_dir.join("artifacts").display().to_string(),
                why: e.to_string(),
            }
        })?
    } else {
        artifacts::Artifacts::s3(&cfg.mlflow.artifacts_destination, max).map_err(|why| {
            ServeError::Store { dir: cfg.mlflow.artifacts_destination.clone(), why }
        })?
    };
    let artifacts = artifacts.with_max_uploads(cfg.mlflow.max_inflight_uploads);
    serve_with(listen, store, Some(artifacts), cfg, |addr| {
        eprintln!("auspex: listening on http://{addr}")
    })
    .await
}

/// Serves with any store. `ready(addr)` is called once the socket is bound.
pub async fn serve_with<S: MlflowStore>(
    listen: &str,
    store: S,
    artifacts: Option<artifacts::Artifacts>,
    cfg: Config,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let det_cfg =
        DetectorConfig { sensitivity: cfg.detector.sensitivity, ..DetectorConfig::default() };
    let engine = Engine::new(cfg.limits.max_active_series, det_cfg, cfg.decode_limits());
    let records = store
        .load_series()
        .await
        .map_err(|e| ServeError::Store { dir: "store".into(), why: e.to_string() })?;
    engine.restore(records);
    if let Ok(open) = store.list_signals(i64::MAX, 1_000_000).await {
        engine.restore_open(open);
    }
    let incidents = incidents::Hub::new(&cfg).map_err(ServeError::Config)?;
    let cfg_traces = cfg.traces.clone();
    let stored = store
        .load_incidents(http::now_ms().saturating_sub(incidents.flap_window_ms()))
        .await
        .map_err(|e| ServeError::Store { dir: "store".into(), why: e.to_string() })?;
    incidents.restore(stored);
    let silenced = silences::load(&store, &cfg)
        .await
        .map_err(|why| ServeError::Store { dir: "store".into(), why })?;
    incidents.restore_silences(silenced);
    let app = Arc::new(App {
        engine,
        store,
        artifacts,
        inflight: Semaphore::new(cfg.limits.max_inflight_writes),
        bodies: Semaphore::new(cfg.limits.max_inflight_body_bytes.div_ceil(1024)),
        connections: listener::Connections::new(
            cfg.limits.max_connections,
            cfg.limits.max_connections_per_address,
        ),
        cfg,
        paused_until: AtomicI64::new(0),
        pending: std::sync::Mutex::new(Vec::new()),
        incidents,
        seen_alerts: crate::events::Seen::default(),
        expiring: crate::events::Expiring::default(),
        signal_writes: auspex_store::GroupCommit::default(),
        traces: std::sync::Mutex::new(
            auspex_rca::spans::ServiceGraph::new(
                cfg_traces.max_spans,
                cfg_traces.bucket.as_millis().min(u128::from(u64::MAX)) as u64,
            )
            .with_max_services(cfg_traces.max_services),
        ),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Bind { addr: listen.to_string(), why: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Io(e.to_string()))?;
    let listener = listener::Limited::new(
        listener,
        app.connections.clone(),
        app.cfg.limits.connection_idle_timeout,
    );
    ready(addr);
    incidents::resume_notifications(&app).await;
    let worker = tokio::spawn(snapshot_loop(app.clone()));
    let ticker = tokio::spawn(incidents::tick_loop(app.clone()));
    let router = http::router(app.clone());
    listener::serve(listener, router, app.cfg.limits.header_read_timeout, shutdown_signal()).await;
    worker.abort();
    ticker.abort();
    incidents::persist(&app).await;
    // Final snapshot on a clean stop.
    snapshot_once(&app).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn snapshot_loop<S: MlflowStore>(app: Arc<App<S>>) {
    let mut tick = tokio::time::interval(app.cfg.series.snapshot_interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        snapshot_once(&app).await;
    }
}

/// Writes pending signals, the changed series, and applies retention.
pub async fn snapshot_once<S: MlflowStore>(app: &Arc<App<S>>) {
    let m = &app.engine.metrics;
    let pending: Vec<_> =
        app.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    if !pending.is_empty() {
        if app.store.put_signals(&pending).await.is_err() {
            m.store_errors.fetch_add(1, Relaxed);
            if let Ok(mut p) = app.pending.lock() {
                p.extend(pending);
            }
        } else {
            incidents::fold(app, &pending).await;
        }
    }
    // Shard by shard, so a snapshot never holds more than one shard's states in memory.
    for k in 0..app.engine.shard_count() {
        let dirty = app.engine.take_dirty_shard(k, app.cfg.series.idle_timeout);
        if dirty.is_empty() {
            continue;
        }
        match app.store.put_series(&dirty).await {
            Ok(()) => {
                m.snapshot_series.fetch_add(dirty.len() as u64, Relaxed);
            }
            Err(_) => {
                m.store_errors.fetch_add(1, Relaxed);
                let ids: Vec<_> = dirty.iter().filter(|r| !r.idle).map(|r| r.id).collect();
                app.engine.mark_dirty(&ids);
            }
        }
    }
    m.snapshots.fetch_add(1, Relaxed);
    let keep = app.cfg.retention.signals.as_millis().min(i64::MAX as u128) as i64;
    let _ = app.store.delete_signals_before(http::now_ms().saturating_sub(keep)).await;
}
