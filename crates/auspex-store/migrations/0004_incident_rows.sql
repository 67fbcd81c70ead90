-- An incident's members and timeline become rows of their own, so that a change to one
-- member rewrites that member's row instead of the incident's whole JSON (up to 500 members
-- and 200 timeline entries). `incidents.json` keeps the rest of the incident, with empty
-- `signals` and `timeline` arrays.
CREATE TABLE incident_members (
    incident_id TEXT NOT NULL,
    pos         INTEGER NOT NULL,   -- the member's place in the incident's `signals`
    json        TEXT NOT NULL,
    PRIMARY KEY (incident_id, pos)
) WITHOUT ROWID;
CREATE TABLE incident_timeline (
    incident_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,   -- increasing in timeline order; gaps where entries were let go
    json        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;
INSERT INTO incident_members (incident_id, pos, json)
    SELECT i.id, m.key, m.value FROM incidents i, json_each(i.json, '$.signals') m;
INSERT INTO incident_timeline (incident_id, seq, json)
    SELECT i.id, t.key, t.value FROM incidents i, json_each(i.json, '$.timeline') t;
UPDATE incidents SET json = json_set(json, '$.signals', json('[]'), '$.timeline', json('[]'));
-- Nothing reads signals by fingerprint, and this index cost every new signal an insert at a
-- random place (measured with `bench alerts`: about a fifth of the intake time).
DROP INDEX IF EXISTS signals_fingerprint;
