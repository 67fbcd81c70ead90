-- Signals are keyed by (start_ms, id) instead of by id alone. An id is a hash of the
-- fingerprint and the start (`SignalId::of`), so the pair is as unique as the id, but new
-- signals now land at the end of the key's b-tree instead of at a random place: a random
-- insert dirties a page of its own, which went to the WAL and back at every commit. The
-- rowid table keeps arrival order, and the new key also serves `list_signals`, so
-- `signals_start` goes.
CREATE TABLE signals_by_time (
    id          TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    kind        TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER,
    score       REAL NOT NULL,
    json        TEXT NOT NULL,
    written_ms  INTEGER NOT NULL
);
INSERT INTO signals_by_time (id, fingerprint, kind, start_ms, end_ms, score, json, written_ms)
    SELECT id, fingerprint, kind, start_ms, end_ms, score, json, written_ms
    FROM signals ORDER BY start_ms, id;
DROP TABLE signals;
ALTER TABLE signals_by_time RENAME TO signals;
CREATE UNIQUE INDEX signals_key ON signals (start_ms, id);
CREATE INDEX signals_written ON signals (written_ms);
CREATE INDEX signals_changes ON signals (start_ms, id) WHERE kind = 'change';
