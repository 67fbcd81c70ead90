//! Group commit for signal writes.
//!
//! Each write to the store is a transaction, and each commit costs the same whatever it holds:
//! the hot index pages go to the WAL again, and with `synchronous = FULL` an fsync. Under load
//! the callers that arrive while one write is committing wait, and the next of them writes
//! everything they brought in one transaction. Each caller still returns only once its own
//! signals are durable, with the outcome of the transaction that held them.
//!
//! The transaction runs on a task of its own, so a caller that goes away (a client hanging up)
//! never cancels a write that holds other callers' signals.

use std::sync::{Arc, Mutex};

use auspex_core::Signal;
use tokio::sync::oneshot;

use crate::{Store, StoreError};

/// A caller waiting for its signals to be written.
struct Waiter {
    signals: Vec<Signal>,
    done: oneshot::Sender<(Vec<Signal>, Result<(), StoreError>)>,
}

/// Batches concurrent [`Store::put_signals`] calls into shared transactions.
#[derive(Default)]
pub struct GroupCommit {
    pending: Mutex<Vec<Waiter>>,
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Writes `signals` (in one transaction with those of concurrent callers) and hands them
    /// back with the outcome once that transaction is committed or has failed.
    pub async fn put_signals<S: Store>(
        &self,
        store: &S,
        signals: Vec<Signal>,
    ) -> (Vec<Signal>, Result<(), StoreError>) {
        if signals.is_empty() {
            return (signals, Ok(()));
        }
        let (done, rx) = oneshot::channel();
        lock(&self.pending).push(Waiter { signals, done });
        let guard = self.writing.clone().lock_owned().await;
        // Empty when a writer before us took our signals with its own.
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            drop(guard);
        } else {
            let store = store.clone();
            tokio::spawn(async move {
                let _guard = guard;
                write(&store, batch).await;
            });
        }
        match rx.await {
            Ok(answer) => answer,
            // The writing task ended without an answer (it panicked).
            Err(_) => (Vec::new(), Err(StoreError::Db("signal write abandoned".into()))),
        }
    }
}

/// Writes the signals of `batch` in one transaction and answers every waiter.
async fn write<S: Store>(store: &S, batch: Vec<Waiter>) {
    let mut lens = Vec::with_capacity(batch.len());
    let mut all = Vec::with_capacity(batch.iter().map(|w| w.signals.len()).sum());
    let mut answer = Vec::with_capacity(batch.len());
    for mut w in batch {
        lens.push(w.signals.len());
        all.append(&mut w.signals);
        answer.push(w.done);
    }
    let r = store.put_signals(&all).await;
    // Hand each caller its own signals back, last caller first.
    for (done, len) in answer.into_iter().zip(lens).rev() {
        let own = all.split_off(all.len() - len);
        let _ = done.send((own, r.clone()));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use auspex_core::{Explanation, Labels, SignalKind};

    use super::*;
    use crate::SqliteStore;

    fn signal(caller: usize, i: usize) -> Signal {
        let (c, n) = (caller.to_string(), i.to_string());
        Signal::new(
            SignalKind::Alert,
            Labels::from_pairs([("alertname", "A"), ("caller", c.as_str()), ("i", n.as_str())])
                .unwrap(),
            (caller * 100 + i) as i64,
            0.5,
            Explanation::Text { message: String::new() },
        )
    }

    /// Concurrent callers each get their own signals back, in order, and all are stored; a
    /// failed transaction fails every caller whose signals it held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_transactions_and_outcomes() {
        let store = SqliteStore::memory().await.unwrap();
        let group = Arc::new(GroupCommit::default());
        let tasks: Vec<_> = (0..16)
            .map(|caller| {
                let (store, group) = (store.clone(), group.clone());
                tokio::spawn(async move {
                    let mine: Vec<Signal> =
                        (0..1 + caller % 5).map(|i| signal(caller, i)).collect();
                    let (back, r) = group.put_signals(&store, mine.clone()).await;
                    r.unwrap();
                    assert_eq!(back, mine, "caller {caller} got its own signals back");
                    mine.len()
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(store.list_signals(0, 1000).await.unwrap().len(), total);

        store.pool.close().await;
        let (back, r) = group.put_signals(&store, vec![signal(99, 0)]).await;
        assert!(r.is_err(), "a closed store fails the write");
        assert_eq!(back, vec![signal(99, 0)], "the signals come back for a retry");
    }
}
