//! The embedded default: SQLite through sqlx, in WAL mode with `synchronous = FULL`, so a
//! committed write survives a crash of the process and of the machine.

use std::path::Path;
use std::str::FromStr;

use auspex_core::{Labels, SeriesId, Signal, TimestampMs};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{SeriesRecord, Store, StoreError};

/// A SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Every write transaction takes this first: one writer at a time, so a deferred
    /// transaction never has to upgrade to a write lock another connection holds ("database is
    /// locked"), and a writer that waits is woken as soon as the one before it is done, instead
    /// of SQLite's busy handler polling with sleeps. Rows are serialised before it is taken.
    pub(crate) write: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Held by an incident write from reading [`Self::written`] to remembering what it
    /// committed, so two incident writes never plan against the same remembered rows.
    pub(crate) incident_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// What the last incident writes committed, so the next rewrites only changed rows.
    pub(crate) written: std::sync::Arc<std::sync::Mutex<crate::incidents::WrittenRows>>,
}

/// Locks `m`; a panic elsewhere while it was held does not poison it for everyone else.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn hex(x: u64) -> String {
    format!("{x:016x}")
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/auspex.db` and runs the migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, true).await
    }

    /// Like [`SqliteStore::open`]; `full_sync = false` commits without an fsync
    /// (`synchronous = NORMAL`): a commit still survives a crash of the process, but a power
    /// loss or kernel crash may lose the last commits (the database stays consistent).
    pub async fn open_with(dir: &Path, full_sync: bool) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Db(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let url = format!("sqlite://{}", dir.join("auspex.db").display());
        Self::connect(&url, 4, full_sync).await
    }

    /// The connection pool (development aids only).
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &SqlitePool {
        &self.pool
    }

    /// An in-memory database (for tests).
    pub async fn memory() -> Result<Self, StoreError> {
        Self::connect("sqlite::memory:", 1, true).await
    }

    async fn connect(url: &str, max: u32, full_sync: bool) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool =
            SqlitePoolOptions::new().max_connections(max).connect_with(opts).await.map_err(db)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(db)?;
        Ok(Self {
            pool,
            write: std::sync::Arc::default(),
            incident_writer: std::sync::Arc::default(),
            written: std::sync::Arc::default(),
        })
    }
}

impl Store for SqliteStore {
    async fn put_signals(&self, signals: &[Signal]) -> Result<(), StoreError> {
        if signals.is_empty() {
            return Ok(());
        }
        // Many rows per statement: each statement is a round trip to the connection's worker
        // thread, which cost more than the insert itself for a webhook of 100 alerts. A later
        // row with the same id updates the earlier one, as separate statements would.
        const ROWS: usize = 100;
        let now = wall_ms();
        // The statements are built (rows serialised, values bound) before the write lock, so
        // other writers wait only for the database.
        let mut statements = Vec::with_capacity(signals.len().div_ceil(ROWS));
        for chunk in signals.chunks(ROWS) {
            let json: Vec<String> =
                chunk.iter().map(serde_json::to_string).collect::<Result<_, _>>().map_err(db)?;
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO signals (id, fingerprint, kind, start_ms, end_ms, score, json, written_ms) ",
            );
            q.push_values(chunk.iter().zip(json), |mut b, (s, json)| {
                b.push_bind(hex(s.id.0))
                    .push_bind(hex(s.fingerprint.0))
                    .push_bind(s.kind.as_str())
                    .push_bind(s.start)
                    .push_bind(s.end)
                    .push_bind(s.score)
                    .push_bind(json)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT(start_ms, id) DO UPDATE SET
                   end_ms = COALESCE(excluded.end_ms, signals.end_ms),
                   score = MAX(signals.score, excluded.score),
                   json = excluded.json,
                   written_ms = excluded.written_ms",
            );
            statements.push(q);
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for q in &mut statements {
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn list_signals(
        &self,
        since: TimestampMs,
        limit: usize,
    ) -> Result<Vec<Signal>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, json, score, end_ms FROM signals WHERE start_ms >= ?1 OR end_ms IS NULL
             ORDER BY start_ms DESC, id LIMIT ?2",
        )
        .bind(since)
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                let json: String = r.get(1);
                let mut s: Signal = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt { id: id.clone(), why: e.to_string() })?;
                s.score = r.get(2);
                s.end = r.get(3);
                Ok(s)
            })
            .collect()
    }

    async fn put_series(&self, records: &[SeriesRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for r in records {
            let labels = serde_json::to_string(&r.labels).map_err(db)?;
            sqlx::query(
                "INSERT INTO series (id, labels, first_seen, last_seen, samples, last_score, idle, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(id) DO UPDATE SET
                   labels = excluded.labels, first_seen = excluded.first_seen,
                   last_seen = excluded.last_seen, samples = excluded.samples,
                   last_score = excluded.last_score, idle = excluded.idle,
                   state = COALESCE(excluded.state, series.state)",
            )
            .bind(hex(r.id.0))
            .bind(labels)
            .bind(r.first_seen)
            .bind(r.last_seen)
            .bind(r.samples.min(i64::MAX as u64) as i64)
            .bind(r.last_score)
            .bind(i64::from(r.idle))
            .bind(r.state.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn load_series(&self) -> Result<Vec<SeriesRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, labels, first_seen, last_seen, samples, last_score, idle, state FROM series",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|r| series_row(r, true)).collect()
    }

    async fn list_series(&self, limit: usize) -> Result<Vec<SeriesRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, labels, first_seen, last_seen, samples, last_score, idle FROM series
             ORDER BY last_seen DESC, id LIMIT ?1",
        )
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|r| series_row(r, false)).collect()
    }

    async fn delete_signals_before(&self, before: TimestampMs) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM signals WHERE end_ms IS NOT NULL AND written_ms < ?1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }
}

fn series_row(r: &sqlx::sqlite::SqliteRow, with_state: bool) -> Result<SeriesRecord, StoreError> {
    let id: String = r.get(0);
    let corrupt = |why: String| StoreError::Corrupt { id: id.clone(), why };
    let labels: String = r.get(1);
    let labels: Labels = serde_json::from_str(&labels).map_err(|e| corrupt(e.to_string()))?;
    let sid = u64::from_str_radix(&id, 16).map_err(|e| corrupt(e.to_string()))?;
    let samples: i64 = r.get(4);
    let idle: i64 = r.get(6);
    Ok(SeriesRecord {
        id: SeriesId(sid),
        labels,
        first_seen: r.get(2),
        last_seen: r.get(3),
        samples: samples.max(0) as u64,
        last_score: r.get(5),
        idle: idle != 0,
        state: if with_state { r.get::<Option<Vec<u8>>, _>(7) } else { None },
    })
}
