
-- Predictions and outcomes share one sequence: `append_prepared` gives each
-- inserted row max(seq of both tables) + 1, inside the write transaction,
-- so seq order across both tables is the order the store accepted them.
-- Rows are never deleted, so a seq is never reused.
CREATE TABLE predictions (
    seq          INTEGER PRIMARY KEY,
    workspace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    plugin       TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    value        REAL,
    label        TEXT,
    confidence   REAL,
    features     TEXT,
    payload      TEXT,
    event_time   INTEGER NOT NULL,
    ingested_at  INTEGER NOT NULL,
    content_hash BLOB    NOT NULL,
    UNIQUE (workspace, id)
);
-- The rowid (= seq) is every index's implicit last column, so this index is
-- ordered by (workspace, plugin, event_time, seq) without storing seq twice.
CREATE INDEX predictions_by_time ON predictions (workspace, plugin, event_time);
-- Ordered by (plugin, workspace, seq): serves `events` (one workspace's
-- records of one plugin after a seq) and `workspaces` (a skip scan).
CREATE INDEX predictions_by_plugin ON predictions (plugin, workspace);

CREATE TABLE outcomes (
    seq           INTEGER PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    plugin        TEXT    NOT NULL,
    prediction_id TEXT    NOT NULL,
    -- The prediction's seq: an integer key keeps the lookup index small.
    prediction_seq INTEGER NOT NULL,
    subject       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    value         REAL,
    label         TEXT,
    success       INTEGER,
    quality       REAL,
    feedback      TEXT,
    payload       TEXT,
    event_time    INTEGER NOT NULL,
    ingested_at   INTEGER NOT NULL,
    content_hash  BLOB    NOT NULL,
    UNIQUE (workspace, id)
);
CREATE INDEX outcomes_by_prediction ON outcomes (prediction_seq);
-- Both ordered with seq last, like their predictions_ counterparts.
CREATE INDEX outcomes_by_time ON outcomes (workspace, plugin, event_time);
CREATE INDEX outcomes_by_plugin ON outcomes (plugin, workspace);

CREATE TABLE plugin_state (
    plugin     TEXT    NOT NULL,
    workspace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin, workspace, key)
) WITHOUT ROWID;

CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    plugin      TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    slot        INTEGER,
    attempt     INTEGER NOT NULL,
    runner      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    report      TEXT,
    error       TEXT
);
CREATE UNIQUE INDEX job_runs_one_per_slot ON job_runs (plugin, job, slot, attempt) WHERE slot IS NOT NULL;
CREATE INDEX job_runs_recent ON job_runs (plugin, job, id);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- JSON values (data, params, evidence, backtest, history) are stored as text.
CREATE TABLE insights (
    id         INTEGER PRIMARY KEY,
    workspace  TEXT    NOT NULL,
    plugin     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    confidence REAL    NOT NULL,
    impact     REAL    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX insights_recent ON insights (workspace, plugin, created_at);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    workspace       TEXT    NOT NULL,
    plugin          TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    dedup_key       TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    occurrences     INTEGER NOT NULL,
    acknowledged_at INTEGER
);
-- At most one open (unacknowledged) alert per dedup key.
CREATE UNIQUE INDEX alerts_open ON alerts (workspace, plugin, dedup_key) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_recent ON alerts (workspace, last_seen_at);

CREATE TABLE improvements (
    id            INTEGER PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    plugin        TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    params        TEXT    NOT NULL,
    evidence      TEXT    NOT NULL,
    metric        TEXT    NOT NULL,
    expected_gain REAL    NOT NULL,
    backtest      TEXT,
    -- Every status it had, oldest first: [{"status": "proposed", "at": "<RFC 3339>"}, ...].
    history       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (workspace, plugin, target, version)
);
CREATE INDEX improvements_recent ON improvements (workspace, plugin, created_at);
