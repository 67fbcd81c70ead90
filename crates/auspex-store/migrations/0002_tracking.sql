-- MLflow-compatible tracking and model registry.
CREATE TABLE experiments (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage   TEXT NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active',
    CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER));
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    experiment_id   INTEGER NOT NULL,
    run_name        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    artifact_uri    TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX runs_experiment ON runs (experiment_id, start_time);
CREATE TABLE params (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE run_tags (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
-- Every logged value; NaN is kept as is_nan = 1 (SQLite stores a NaN REAL as NULL).
CREATE TABLE metrics (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL,
    is_nan    INTEGER NOT NULL
);
CREATE INDEX metrics_run_key ON metrics (run_id, key, step);
-- The latest value per key: highest step, then timestamp, then value (MLflow's rule).
CREATE TABLE latest_metrics (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE run_inputs (
    run_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    name   TEXT NOT NULL,
    json   TEXT NOT NULL,
    PRIMARY KEY (run_id, name, digest)
) WITHOUT ROWID;

CREATE TABLE registered_models (
    name                   TEXT PRIMARY KEY,
    creation_timestamp     INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    description            TEXT NOT NULL
);
CREATE TABLE registered_model_tags (
    name  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE model_versions (
    name                   TEXT NOT NULL,
    version                INTEGER NOT NULL,
    creation_timestamp     INTEGER NOT NULL,
    last_updated_timestamp INTEGER NOT NULL,
    user_id                TEXT NOT NULL,
    current_stage          TEXT NOT NULL,
    description            TEXT NOT NULL,
    source                 TEXT NOT NULL,
    run_id                 TEXT NOT NULL,
    status                 TEXT NOT NULL,
    run_link               TEXT NOT NULL,
    model_id               TEXT NOT NULL,
    -- Lineage captured at registration: dataset digests, git commit (JSON).
    lineage                TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE model_version_tags (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (name, version, key)
) WITHOUT ROWID;
CREATE TABLE model_aliases (
    name    TEXT NOT NULL,
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
) WITHOUT ROWID;
-- Who changed what in the registry, and when.
CREATE TABLE registry_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT NOT NULL,
    version INTEGER,
    action  TEXT NOT NULL,
    from_value TEXT,
    to_value   TEXT,
    who     TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX registry_audit_name ON registry_audit (name, version);

-- MLflow 3 logged models, kept as their JSON form.
CREATE TABLE logged_models (
    model_id      TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    json          TEXT NOT NULL
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id);
