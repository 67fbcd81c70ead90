//! Where incidents live: [`IncidentStore`] and its SQLite implementation.

use foldhash::{HashMap, HashMapExt};
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};

use auspex_core::{IncidentId, Signal, TimestampMs};
use auspex_incidents::silence::Silence;
use auspex_incidents::{Incident, Member, Status, TimelineEntry};
use sqlx::Row;

use crate::StoreError;
use crate::sqlite::{SqliteStore, db, lock, wall_ms};

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

    /// Inserts or replaces a silence by id.
    fn put_silence(&self, s: &Silence) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Silences ending at or after `ended_since`, oldest end first (start-up).
    fn load_silences(
        &self,
        ended_since: TimestampMs,
    ) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send;

    /// Deletes silences by id; returns how many were there.
    fn delete_silences(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

fn parse<T: serde::de::DeserializeOwned>(id: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt { id: id.to_string(), why: e.to_string() })
}

fn lim(limit: usize) -> i64 {
    limit.min(i64::MAX as usize) as i64
}

/// How many incidents [`Written`] is remembered for; an incident beyond it is written whole
/// next time (correct, only slower).
const REMEMBERED: usize = 1024;

/// Rows per multi-row statement.
const ROWS: usize = 100;

/// What was last committed of one incident: a hash of each member row, by position, and of
/// each timeline row with its `seq`, so that the next write rewrites only what changed.
#[derive(Debug, Clone, Default)]
struct Written {
    members: Vec<u64>,
    timeline: Vec<(i64, u64)>,
    next_seq: i64,
    used: u64,
}

/// [`Written`] for the incidents written last, at most [`REMEMBERED`].
#[derive(Debug, Default)]
pub(crate) struct WrittenRows {
    by_id: HashMap<IncidentId, Written>,
    clock: u64,
}

impl WrittenRows {
    fn get(&self, id: IncidentId) -> Option<&Written> {
        self.by_id.get(&id)
    }

    fn insert(&mut self, id: IncidentId, mut w: Written) {
        self.clock += 1;
        w.used = self.clock;
        if self.by_id.len() >= REMEMBERED
            && !self.by_id.contains_key(&id)
            && let Some(old) = self.by_id.iter().min_by_key(|(_, w)| w.used).map(|(k, _)| *k)
        {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, w);
    }
}

/// A hasher for content hashes: seeded once per process (the hashes live in memory only), so
/// label values a client chose cannot be crafted to collide.
fn content_hasher() -> impl Hasher {
    static STATE: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(Default::default).build_hasher()
}

/// A hash of every field of a member, without serialising it. The destructuring lists every
/// field, so a field added to [`Member`] fails to compile here until it is hashed too.
fn member_hash(m: &Member) -> u64 {
    let Member { id, fingerprint, kind, labels, title, start, end, score, occurrences, deviation } =
        m;
    let mut h = content_hasher();
    (id, fingerprint, kind, labels, title, start, end, score.to_bits(), occurrences).hash(&mut h);
    deviation.map(f64::to_bits).hash(&mut h);
    h.finish()
}

/// A hash of every field of a timeline entry (as [`member_hash`]).
fn entry_hash(e: &TimelineEntry) -> u64 {
    let TimelineEntry { time, event, detail } = e;
    let mut h = content_hasher();
    (time, event, detail).hash(&mut h);
    h.finish()
}

/// `inc` without its members and timeline (they are rows of their own).
fn header(inc: &Incident) -> Incident {
    Incident {
        v: inc.v,
        id: inc.id,
        title: inc.title.clone(),
        status: inc.status,
        severity: inc.severity,
        score: inc.score,
        opened: inc.opened,
        last_signal: inc.last_signal,
        acknowledged: inc.acknowledged,
        resolved: inc.resolved,
        resolved_by: inc.resolved_by.clone(),
        acknowledged_by: inc.acknowledged_by.clone(),
        flapping: inc.flapping,
        services: inc.services.clone(),
        scope: inc.scope.clone(),
        signal_count: inc.signal_count,
        signals: Vec::new(),
        timeline: Vec::new(),
        unsent: inc.unsent.clone(),
        withheld: inc.withheld.clone(),
    }
}

/// One statement of an incident write, built (rows serialised, values bound) before the
/// store's write lock is taken.
enum Statement {
    /// Inserts or replaces rows (see [`upsert_rows`]).
    Upsert(sqlx::QueryBuilder<sqlx::Sqlite>),
    /// Deletes `table`'s rows of the incident whose `key` is in `[from, to)`.
    Delete { table: &'static str, key: &'static str, from: i64, to: i64 },
}

/// Statements inserting or replacing `(incident_id, key, json)` rows of `table`
/// (`incident_members` keyed by `pos`, `incident_timeline` by `seq`).
fn upsert_rows(
    out: &mut Vec<Statement>,
    table: &'static str,
    key: &'static str,
    id: &str,
    rows: Vec<(i64, String)>,
) {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "INSERT INTO {table} (incident_id, {key}, json) "
        ));
        q.push_values(rows.by_ref().take(ROWS), |mut b, (k, json)| {
            b.push_bind(id.to_string()).push_bind(k).push_bind(json);
        });
        q.push(format!(" ON CONFLICT(incident_id, {key}) DO UPDATE SET json = excluded.json"));
        out.push(Statement::Upsert(q));
    }
}

/// The rows of incident `id` in `table`, in `key` order, parsed.
async fn child_rows<T: serde::de::DeserializeOwned>(
    tx: &mut sqlx::SqliteConnection,
    table: &'static str,
    key: &'static str,
    id: &str,
) -> Result<Vec<T>, StoreError> {
    // `table` and `key` are this file's constants, never input. One row holding a JSON array:
    // decoding thousands of small rows one by one cost three times as much.
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT '[' || group_concat(json, ',' ORDER BY {key}) || ']' FROM {table}
         WHERE incident_id = ?1"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    match row.get::<Option<&str>, _>(0) {
        Some(array) => parse(id, array),
        None => Ok(Vec::new()),
    }
}

/// Where `new` (timeline hashes) continues `old`: the number `d` of entries after the first
/// that were let go, when `new` is `old[0]`, then `old[1 + d..]`, then entries appended.
fn continues(old: &[(i64, u64)], new: &[u64]) -> Option<usize> {
    let (first, rest) = old.split_first()?;
    let (new_first, tail) = new.split_first()?;
    if *new_first != first.1 {
        return None;
    }
    (0..=rest.len()).find(|&d| {
        let kept = &rest[d..];
        tail.len() >= kept.len() && kept.iter().zip(tail).all(|(o, n)| o.1 == *n)
    })
}

/// What writing one incident takes: its header, then the row statements in order.
struct Plan {
    id: String,
    status: &'static str,
    opened: i64,
    resolved: Option<i64>,
    header: String,
    statements: Vec<Statement>,
}

/// Plans the write of incident `inc` (header, members, timeline), rewriting only the rows that
/// changed since `before`; returns the plan and what will be written once it is applied.
/// Pure computation: the hashing and serialising happen here, outside the write lock.
fn plan_incident(inc: &Incident, before: Option<&Written>) -> Result<(Plan, Written), StoreError> {
    let id = inc.id.to_string();
    let header = serde_json::to_string(&header(inc)).map_err(db)?;
    let mut statements = Vec::new();
    let delete = |table, key, from, to| Statement::Delete { table, key, from, to };

    // Members by position: a changed or new position is written, positions past the end go.
    let mut now = Written::default();
    let mut rows = Vec::new();
    for (pos, m) in inc.signals.iter().enumerate() {
        let h = member_hash(m);
        if before.and_then(|b| b.members.get(pos)) != Some(&h) {
            rows.push((pos as i64, serde_json::to_string(m).map_err(db)?));
        }
        now.members.push(h);
    }
    upsert_rows(&mut statements, "incident_members", "pos", &id, rows);
    let old_len = before.map_or(i64::MAX, |b| b.members.len() as i64);
    if old_len > inc.signals.len() as i64 {
        statements.push(delete("incident_members", "pos", inc.signals.len() as i64, i64::MAX));
    }

    // The timeline: entries are appended, and the oldest after the first let go; anything
    // else (or nothing remembered) rewrites it whole.
    let hashes: Vec<u64> = inc.timeline.iter().map(entry_hash).collect();
    let json = |e: &TimelineEntry| serde_json::to_string(e).map_err(db);
    let old = before.map_or(&[][..], |b| &b.timeline[..]);
    let mut rows = Vec::new();
    match continues(old, &hashes) {
        Some(d) => {
            let b = before.map_or(0, |b| b.next_seq);
            if d > 0 {
                statements.push(delete("incident_timeline", "seq", old[1].0, old[d].0 + 1));
            }
            now.timeline.push(old[0]);
            now.timeline.extend_from_slice(&old[1 + d..]);
            now.next_seq = b;
            for (e, h) in inc.timeline.iter().zip(&hashes).skip(old.len() - d) {
                rows.push((now.next_seq, json(e)?));
                now.timeline.push((now.next_seq, *h));
                now.next_seq += 1;
            }
        }
        None => {
            statements.push(delete("incident_timeline", "seq", i64::MIN, i64::MAX));
            for (e, h) in inc.timeline.iter().zip(&hashes) {
                rows.push((now.next_seq, json(e)?));
                now.timeline.push((now.next_seq, *h));
                now.next_seq += 1;
            }
        }
    }
    upsert_rows(&mut statements, "incident_timeline", "seq", &id, rows);
    let plan = Plan {
        id,
        status: inc.status.as_str(),
        opened: inc.opened,
        resolved: inc.resolved,
        header,
        statements,
    };
    Ok((plan, now))
}

/// Applies `plan` in `tx`.
async fn apply_plan(tx: &mut sqlx::SqliteConnection, plan: &mut Plan) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incidents (id, status, opened_ms, resolved_ms, json, written_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status,
           opened_ms = excluded.opened_ms, resolved_ms = excluded.resolved_ms,
           json = excluded.json, written_ms = excluded.written_ms",
    )
    .bind(&plan.id)
    .bind(plan.status)
    .bind(plan.opened)
    .bind(plan.resolved)
    .bind(plan.header.as_str())
    .bind(wall_ms())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    for st in &mut plan.statements {
        match st {
            Statement::Upsert(q) => {
                q.build().execute(&mut *tx).await.map_err(db)?;
            }
            Statement::Delete { table, key, from, to } => {
                // `table` and `key` are this file's constants, never input.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE incident_id = ?1 AND {key} >= ?2 AND {key} < ?3"
                )))
                .bind(&plan.id)
                .bind(*from)
                .bind(*to)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Reads the incidents whose `(id, json)` headers `sql` selects (with `binds`), members and
    /// timeline included, in one read transaction so that all rows come from one commit.
    async fn read_incidents(
        &self,
        sql: &'static str,
        binds: impl FnOnce(
            sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        )
            -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let heads = binds(sqlx::query(sql)).fetch_all(&mut *tx).await.map_err(db)?;
        let mut out = Vec::with_capacity(heads.len());
        for r in &heads {
            let id: &str = r.get(0);
            let mut inc: Incident = parse(id, r.get(1))?;
            inc.signals = child_rows(&mut tx, "incident_members", "pos", id).await?;
            inc.timeline = child_rows(&mut tx, "incident_timeline", "seq", id).await?;
            out.push(inc);
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }
}

/// Change events by time. It must keep `kind = 'change'` literal: that is what lets SQLite use
/// the partial index `signals_changes`, which only change events enter.
const CHANGES: &str = "SELECT id, json FROM signals WHERE kind = 'change'
    AND start_ms BETWEEN ?1 AND ?2 ORDER BY start_ms, id LIMIT ?3";

impl IncidentStore for SqliteStore {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError> {
        if incidents.is_empty() {
            return Ok(());
        }
        let _planning = self.incident_writer.lock().await;
        // What this write will have written; remembered only once it has committed.
        let mut staged: HashMap<IncidentId, Written> = HashMap::new();
        let mut plans = Vec::with_capacity(incidents.len());
        for inc in incidents {
            let before = match staged.get(&inc.id) {
                Some(w) => Some(w.clone()),
                None => lock(&self.written).get(inc.id).cloned(),
            };
            let (plan, now) = plan_incident(inc, before.as_ref())?;
            plans.push(plan);
            staged.insert(inc.id, now);
        }
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await.map_err(db)?;
            for plan in &mut plans {
                apply_plan(&mut tx, plan).await?;
            }
            tx.commit().await.map_err(db)?;
        }
        let mut w = lock(&self.written);
        for (id, now) in staged {
            w.insert(id, now);
        }
        Ok(())
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let mut got = self
            .read_incidents("SELECT id, json FROM incidents WHERE id = ?1", |q| {
                q.bind(id.to_string())
            })
            .await?;
        Ok(got.pop())
    }

    async fn list_incidents(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        self.read_incidents(
            "SELECT id, json FROM incidents WHERE ?1 IS NULL OR status = ?1
             ORDER BY opened_ms DESC, id LIMIT ?2",
            |q| q.bind(status.map(Status::as_str)).bind(lim(limit)),
        )
        .await
    }

    async fn load_incidents(
        &self,
        resolved_since: TimestampMs,
    ) -> Result<Vec<Incident>, StoreError> {
        self.read_incidents(
            "SELECT id, json FROM incidents WHERE status != 'resolved' OR resolved_ms >= ?1
             ORDER BY opened_ms, id",
            |q| q.bind(resolved_since),
        )
        .await
    }

    async fn list_changes(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<Signal>, StoreError> {
        let rows = sqlx::query(CHANGES)
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

    async fn put_silence(&self, s: &Silence) -> Result<(), StoreError> {
        let json = serde_json::to_string(s).map_err(db)?;
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO silences (id, ends_ms, json) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET ends_ms = excluded.ends_ms, json = excluded.json",
        )
        .bind(&s.id)
        .bind(s.ends)
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn load_silences(&self, ended_since: TimestampMs) -> Result<Vec<Silence>, StoreError> {
        let rows =
            sqlx::query("SELECT id, json FROM silences WHERE ends_ms >= ?1 ORDER BY ends_ms, id")
                .bind(ended_since)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter().map(|r| parse(r.get(0), r.get(1))).collect()
    }

    async fn delete_silences(&self, ids: &[String]) -> Result<u64, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut n = 0;
        for id in ids {
            let r = sqlx::query("DELETE FROM silences WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n += r.rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A change of [`CHANGES`] that stopped matching the partial index would scan every signal.
    #[tokio::test]
    async fn change_lookup_uses_the_partial_index() {
        let s = SqliteStore::memory().await.unwrap();
        let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {CHANGES}")))
            .bind(0i64)
            .bind(1i64)
            .bind(10i64)
            .fetch_all(&s.pool)
            .await
            .unwrap();
        let plan: Vec<String> = plan.iter().map(|r| r.get::<String, _>(3)).collect();
        assert!(plan.iter().any(|p| p.contains("USING INDEX signals_changes")), "{plan:?}");
    }

    #[test]
    fn a_timeline_continues_when_entries_were_appended_or_let_go() {
        let old = [(0, 10), (1, 11), (2, 12), (5, 13)];
        assert_eq!(continues(&old, &[10, 11, 12, 13, 14]), Some(0), "appended");
        assert_eq!(continues(&old, &[10, 12, 13, 14]), Some(1), "one let go, one appended");
        assert_eq!(continues(&old, &[10, 14]), Some(3), "all after the first let go");
        assert_eq!(continues(&old, &[99, 11, 12, 13]), None, "the first changed");
        assert_eq!(continues(&[], &[10]), None, "nothing remembered");
    }
}
