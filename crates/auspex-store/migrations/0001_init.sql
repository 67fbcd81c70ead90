-- Signals: one row per occurrence; the full versioned Signal JSON is kept in `json`.
CREATE TABLE signals (
    id          TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kind        TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER,
    score       REAL NOT NULL,
    json        TEXT NOT NULL,
    -- Wall-clock time of the last write: retention counts from here, not from data time,
    -- so backfilled data is kept as long as fresh data.
    written_ms  INTEGER NOT NULL
);
CREATE INDEX signals_start ON signals (start_ms);
CREATE INDEX signals_written ON signals (written_ms);
CREATE INDEX signals_fingerprint ON signals (fingerprint, start_ms);

-- Series known to the server, with the detector snapshot of each.
CREATE TABLE series (
    id          TEXT PRIMARY KEY,
    labels      TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    last_score  REAL NOT NULL,
    idle        INTEGER NOT NULL DEFAULT 0,
    state       BLOB
);
