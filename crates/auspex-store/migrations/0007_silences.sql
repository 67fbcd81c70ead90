-- Silences (mute the notifications of matching incidents for a while). Few rows: read whole
-- at start-up; expired ones are deleted after the retention.
CREATE TABLE silences (
    id      TEXT PRIMARY KEY,
    ends_ms INTEGER NOT NULL,
    json    TEXT NOT NULL
) WITHOUT ROWID;
