//! The conformance suite every [`crate::Store`] backend must pass.
//!
//! Each check is an async function taking a fresh store; [`store_conformance_tests!`] turns
//! them into `#[tokio::test]`s for a backend:
//!
//! ```ignore
//! auspex_store::store_conformance_tests!(sqlite, auspex_store::SqliteStore::memory().await.unwrap());
//! ```

#![allow(clippy::unwrap_used)] // test support: a failed step is a failed test

use auspex_core::{Explanation, Labels, SeriesId, Signal, SignalKind};

use crate::{SeriesRecord, Store};

fn signal(name: &str, start: i64, score: f64) -> Signal {
    let labels = Labels::from_pairs([("__name__", name), ("job", "t")]).unwrap_or_default();
    Signal::new(
        SignalKind::Anomaly,
        labels,
        start,
        score,
        Explanation::Metric {
            value: 2.0,
            expected: 1.0,
            lower: 0.5,
            upper: 1.5,
            deviation: 5.0,
            anomalous_since: start,
        },
    )
}

fn record(name: &str, last_seen: i64, state: Option<Vec<u8>>) -> SeriesRecord {
    let labels = Labels::from_pairs([("__name__", name)]).unwrap_or_default();
    SeriesRecord {
        id: labels.series_id(),
        labels,
        first_seen: 1000,
        last_seen,
        samples: 7,
        last_score: 0.25,
        idle: false,
        state,
    }
}

/// Signals round-trip exactly, newest first, filtered by time, limited.
pub async fn signals_round_trip<S: Store>(s: S) {
    let a = signal("a", 1_000, 0.5);
    let b = signal("b", 2_000, 0.9);
    let mut c = signal("c", 500, 0.7);
    c.end = Some(600);
    s.put_signals(&[a.clone(), b.clone(), c.clone()]).await.unwrap();
    let all = s.list_signals(0, 100).await.unwrap();
    assert_eq!(all, vec![b.clone(), a.clone(), c.clone()]);
    let recent = s.list_signals(900, 100).await.unwrap();
    assert_eq!(recent, vec![b.clone(), a.clone()], "c ended before the window");
    assert_eq!(s.list_signals(0, 1).await.unwrap(), vec![b]);
}

/// Open signals stay listed whatever the window; an update sets the end and keeps the max score.
pub async fn signals_update_by_id<S: Store>(s: S) {
    let a = signal("a", 1_000, 0.9);
    s.put_signals(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(s.list_signals(5_000, 10).await.unwrap().len(), 1, "open signals always listed");
    let mut closed = a.clone();
    closed.end = Some(3_000);
    closed.score = 0.4;
    s.put_signals(&[closed]).await.unwrap();
    let got = s.list_signals(0, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].end, Some(3_000));
    assert_eq!(got[0].score, 0.9, "the higher score wins");
    assert!(s.list_signals(5_000, 10).await.unwrap().is_empty());
    // Retention counts from when a signal was written (wall clock), not from its data time.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    assert_eq!(s.delete_signals_before(now - 60_000).await.unwrap(), 0, "written just now");
    let open = signal("open", 2_000, 0.5);
    s.put_signals(std::slice::from_ref(&open)).await.unwrap();
    assert_eq!(s.delete_signals_before(now + 60_000).await.unwrap(), 1, "only the closed one");
    assert_eq!(s.list_signals(0, 10).await.unwrap(), vec![open]);
}

/// Series records round-trip with state; a missing state keeps the stored one.
pub async fn series_round_trip<S: Store>(s: S) {
    let a = record("a", 5_000, Some(vec![1, 2, 3]));
    let b = record("b", 9_000, None);
    s.put_series(&[a.clone(), b.clone()]).await.unwrap();
    let mut loaded = s.load_series().await.unwrap();
    loaded.sort_by_key(|r| r.labels.metric_name().map(str::to_string));
    assert_eq!(loaded, vec![a.clone(), b.clone()]);
    let mut a2 = a.clone();
    a2.state = None;
    a2.samples = 99;
    a2.idle = true;
    s.put_series(&[a2]).await.unwrap();
    let loaded = s.load_series().await.unwrap();
    let got = loaded.iter().find(|r| r.id == a.id).unwrap();
    assert_eq!(got.state, Some(vec![1, 2, 3]), "state kept");
    assert_eq!((got.samples, got.idle), (99, true));
    let listed = s.list_series(10).await.unwrap();
    assert_eq!(listed[0].labels, b.labels, "most recently seen first");
    assert!(listed.iter().all(|r| r.state.is_none()));
    assert_eq!(s.list_series(1).await.unwrap().len(), 1);
    assert_ne!(a.id, SeriesId(0));
}

/// Many writes in one call are atomic and all visible.
pub async fn bulk_writes<S: Store>(s: S) {
    let sigs: Vec<Signal> = (0..500).map(|i| signal(&format!("m{i}"), i, 0.5)).collect();
    s.put_signals(&sigs).await.unwrap();
    assert_eq!(s.list_signals(0, 1000).await.unwrap().len(), 500);
    let recs: Vec<SeriesRecord> =
        (0..500).map(|i| record(&format!("m{i}"), i, Some(vec![i as u8; 100]))).collect();
    s.put_series(&recs).await.unwrap();
    assert_eq!(s.load_series().await.unwrap().len(), 500);
}

/// Instantiates the conformance suite for a backend: `store_conformance_tests!(name, expr)`,
/// where `expr` (evaluated inside an async test) yields a fresh, empty store.
#[macro_export]
macro_rules! store_conformance_tests {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn signals_round_trip() {
                $crate::conformance::signals_round_trip($make).await;
            }
            #[tokio::test]
            async fn signals_update_by_id() {
                $crate::conformance::signals_update_by_id($make).await;
            }
            #[tokio::test]
            async fn series_round_trip() {
                $crate::conformance::series_round_trip($make).await;
            }
            #[tokio::test]
            async fn bulk_writes() {
                $crate::conformance::bulk_writes($make).await;
            }
        }
    };
}
