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
