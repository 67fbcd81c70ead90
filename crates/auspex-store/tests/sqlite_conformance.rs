//! The conformance suite against SQLite: in memory, and on disk (durable across reopen).

#![allow(clippy::unwrap_used)]

use auspex_store::{SqliteStore, Store};

auspex_store::store_conformance_tests!(sqlite_memory, SqliteStore::memory().await.unwrap());
auspex_store::store_conformance_tests!(sqlite_file, {
    let dir = std::env::temp_dir().join(format!(
        "auspex-store-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    SqliteStore::open(&dir).await.unwrap()
});

/// An empty folder `name` with a database migrated only up to `version`, as an older build
/// left it: the folder and a pool on its database.
async fn database_at(name: &str, version: i64) -> (std::path::PathBuf, sqlx::SqlitePool) {
    let dir = std::env::temp_dir().join(format!("auspex-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("auspex.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate!("./migrations").run_to(version, &pool).await.unwrap();
    (dir, pool)
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = std::env::temp_dir().join(format!("auspex-store-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let s = SqliteStore::open(&dir).await.unwrap();
        auspex_store::conformance::bulk_writes(s).await;
    }
    let s = SqliteStore::open(&dir).await.unwrap();
    assert_eq!(s.list_signals(0, 1000).await.unwrap().len(), 651, "bulk_writes wrote 651");
    assert_eq!(s.load_series().await.unwrap().len(), 500);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On disk, reopened every 100 steps: a store that remembers nothing of what it wrote must
/// still rewrite exactly what changed (it rewrites whole incidents until it knows them).
#[tokio::test]
async fn incident_rows_follow_every_change_across_reopen() {
    let dir = std::env::temp_dir().join(format!("auspex-store-rows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = SqliteStore::open(&dir).await.unwrap();
    let d = dir.clone();
    auspex_store::conformance::incidents_follow_every_change(s, move |old| {
        let d = d.clone();
        async move {
            drop(old);
            SqliteStore::open(&d).await.unwrap()
        }
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database written before incidents had rows of their own (migrations up to 0003, each
/// incident one JSON) reads back the same after the migration, awkward floats included, and
/// takes later changes.
#[tokio::test]
async fn incidents_written_as_one_json_survive_the_migration() {
    use auspex_core::{Explanation, Labels, Signal, SignalKind};
    use auspex_incidents::{Config, Correlator, Topology};
    use auspex_store::IncidentStore;
    let mut c = Correlator::new(Config::default(), Topology::default());
    let sig = |svc: &str, t: i64, dev: f64| {
        Signal::new(
            SignalKind::Anomaly,
            Labels::from_pairs([("__name__", "latency"), ("service", svc)]).unwrap(),
            t,
            0.1 + 0.7,
            Explanation::Metric {
                value: 1e-300,
                expected: 1.0,
                lower: 0.5,
                upper: 1.5,
                deviation: dev,
                anomalous_since: t,
            },
        )
    };
    let first = c.observe(&sig("api", 1_000, 1.0 / 3.0))[0].id();
    c.observe(&sig("db", 2_000, 123_456_789.123_456_79));
    c.ack(first, 3_000, "ana \"quoted\" ünïcode").unwrap();
    let before = c.get(first).unwrap().clone();
    assert_eq!(before.signals.len(), 2);
    let dir = {
        let (dir, pool) = database_at("migrate", 3).await;
        sqlx::query(
            "INSERT INTO incidents (id, status, opened_ms, resolved_ms, json, written_ms)
             VALUES (?1, ?2, ?3, NULL, ?4, 0)",
        )
        .bind(before.id.to_string())
        .bind(before.status.as_str())
        .bind(before.opened)
        .bind(serde_json::to_string(&before).unwrap())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        dir
    };
    let s = SqliteStore::open(&dir).await.unwrap();
    assert_eq!(s.get_incident(first).await.unwrap(), Some(before));
    c.observe(&sig("web", 4_000, -2.5));
    c.resolve(first, 5_000, "bo").unwrap();
    let after = c.get(first).unwrap().clone();
    s.put_incidents(std::slice::from_ref(&after)).await.unwrap();
    assert_eq!(s.load_incidents(0).await.unwrap(), vec![after]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Migration 6 re-keys signals by (start, id): signals stored before it read back the same,
/// still update by id, and change events are still found by time.
#[tokio::test]
async fn signals_stored_before_the_new_key_survive_the_migration() {
    use auspex_core::{Explanation, Labels, Signal, SignalKind};
    use auspex_store::IncidentStore;
    let sig = |name: &str, kind: SignalKind, t: i64| {
        Signal::new(
            kind,
            Labels::from_pairs([("alertname", name), ("service", "api")]).unwrap(),
            t,
            0.5,
            Explanation::Text { message: format!("{name} \"quoted\" ü") },
        )
    };
    let alert = sig("HighLatency", SignalKind::Alert, 1_000);
    let change = sig("deploy", SignalKind::Change, 2_000);
    let dir = {
        let (dir, pool) = database_at("migrate6", 5).await;
        for s in [&alert, &change] {
            sqlx::query(
                "INSERT INTO signals (id, fingerprint, kind, start_ms, end_ms, score, json, written_ms)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, 0)",
            )
            .bind(format!("{:016x}", s.id.0))
            .bind(format!("{:016x}", s.fingerprint.0))
            .bind(s.kind.as_str())
            .bind(s.start)
            .bind(s.score)
            .bind(serde_json::to_string(s).unwrap())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
        dir
    };
    let s = SqliteStore::open(&dir).await.unwrap();
    assert_eq!(s.list_signals(0, 10).await.unwrap(), vec![change.clone(), alert.clone()]);
    let mut ended = alert.clone();
    ended.end = Some(3_000);
    s.put_signals(std::slice::from_ref(&ended)).await.unwrap();
    assert_eq!(s.list_signals(0, 10).await.unwrap(), vec![change.clone(), ended], "updated by id");
    assert_eq!(s.list_changes(0, 10_000, 10).await.unwrap(), vec![change]);
    std::fs::remove_dir_all(&dir).unwrap();
}
