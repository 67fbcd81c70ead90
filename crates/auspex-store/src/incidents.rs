//! Where incidents live: [`IncidentStore`] and its SQLite implementation.

use std::future::Future;

use auspex_core::{IncidentId, Signal, TimestampMs};
use auspex_incidents::{Incident, Status};
use sqlx::Row;

use crate::StoreError;
use crate::sqlite::{SqliteStore, db, wall_ms};

/// Incidents and the change events around them. Writes are durable before they resolve.
pub trait IncidentStore: Clone + Send + Sync + 'static {
    /// Inserts or replaces incidents by id.
    fn put_incidents(
        &self,
        incidents: &[Incident],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One incident.
    fn get_incident(
        &self,
        id: IncidentId,
    ) -> impl Future<Output = Result<Option<Incident>, StoreError>> + Send;

    /// Incidents, newest opened first, optionally of one status, at most `limit`.
    fn list_incidents(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    /// Incidents not resolved, or resolved at or after `resolved_since` (start-up).
    fn load_incidents(
        &self,
        resolved_since: TimestampMs,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    /// Change signals (deploys, config, flags) that started in `[from, to]`, oldest first, at
    /// most `limit`.
    fn list_changes(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Signal>, StoreError>> + Send;
}

fn parse(id: &str, json: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt { id: id.to_string(), why: e.to_string() })
}

fn rows_to_incidents(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<Incident>, StoreError> {
    rows.iter().map(|r| parse(r.get(0), r.get(1))).collect()
}

fn lim(limit: usize) -> i64 {
    limit.min(i64::MAX as usize) as i64
}

impl IncidentStore for SqliteStore {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError> {
        if incidents.is_empty() {
            return Ok(());
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for inc in incidents {
            let json = serde_json::to_string(inc).map_err(db)?;
            sqlx::query(
                "INSERT INTO incidents (id, status, opened_ms, resolved_ms, json, written_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status,
                   opened_ms = excluded.opened_ms, resolved_ms = excluded.resolved_ms,
                   json = excluded.json, written_ms = excluded.written_ms",
            )
            .bind(inc.id.to_string())
            .bind(inc.status.as_str())
            .bind(inc.opened)
            .bind(inc.resolved)
            .bind(json)
            .bind(wall_ms())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query("SELECT id, json FROM incidents WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| parse(r.get(0), r.get(1))).transpose()
    }

    async fn list_incidents(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, json FROM incidents WHERE ?1 IS NULL OR status = ?1
             ORDER BY opened_ms DESC, id LIMIT ?2",
        )
        .bind(status.map(Status::as_str))
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows_to_incidents(&rows)
    }

    async fn load_incidents(
        &self,
        resolved_since: TimestampMs,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, json FROM incidents WHERE status != 'resolved' OR resolved_ms >= ?1
             ORDER BY opened_ms, id",
        )
        .bind(resolved_since)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows_to_incidents(&rows)
    }

    async fn list_changes(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<Signal>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, json FROM signals WHERE kind = 'change' AND start_ms BETWEEN ?1 AND ?2
             ORDER BY start_ms, id LIMIT ?3",
        )
        .bind(from)
        .bind(to)
        .bind(lim(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                serde_json::from_str(r.get(1))
                    .map_err(|e| StoreError::Corrupt { id, why: e.to_string() })
            })
            .collect()
    }
}
