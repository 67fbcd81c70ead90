-- Incidents: one row each; the full versioned Incident JSON is kept in `json`.
CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    opened_ms       INTEGER NOT NULL,
    resolved_ms     INTEGER,
    json            TEXT NOT NULL,
    written_ms      INTEGER NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened_ms);
CREATE INDEX incidents_status ON incidents (status, opened_ms);
CREATE INDEX signals_kind_start ON signals (kind, start_ms);
