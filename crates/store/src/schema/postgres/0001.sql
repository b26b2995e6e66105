
CREATE TABLE seq_counter (
    one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last BIGINT  NOT NULL
);
INSERT INTO seq_counter (one, last) VALUES (TRUE, 0);

CREATE TABLE predictions (
    seq          BIGINT PRIMARY KEY,
    workspace    TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    plugin       TEXT COLLATE "C" NOT NULL,
    subject      TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    value        DOUBLE PRECISION,
    label        TEXT,
    confidence   DOUBLE PRECISION,
    features     TEXT,
    payload      TEXT,
    event_time   BIGINT NOT NULL,
    ingested_at  BIGINT NOT NULL,
    content_hash BYTEA  NOT NULL,
    UNIQUE (workspace, id)
);
CREATE INDEX predictions_by_time ON predictions (workspace, plugin, event_time, seq);
CREATE INDEX predictions_by_plugin ON predictions (plugin, workspace, seq);

CREATE TABLE outcomes (
    seq            BIGINT PRIMARY KEY,
    workspace      TEXT COLLATE "C" NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    plugin         TEXT COLLATE "C" NOT NULL,
    prediction_id  TEXT COLLATE "C" NOT NULL,
    prediction_seq BIGINT NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL,
    value          DOUBLE PRECISION,
    label          TEXT,
    success        BOOLEAN,
    quality        DOUBLE PRECISION,
    feedback       TEXT,
    payload        TEXT,
    event_time     BIGINT NOT NULL,
    ingested_at    BIGINT NOT NULL,
    content_hash   BYTEA  NOT NULL,
    UNIQUE (workspace, id)
);
CREATE INDEX outcomes_by_prediction ON outcomes (prediction_seq);
CREATE INDEX outcomes_by_time ON outcomes (workspace, plugin, event_time, seq);
CREATE INDEX outcomes_by_plugin ON outcomes (plugin, workspace, seq);

CREATE TABLE plugin_state (
    plugin     TEXT COLLATE "C" NOT NULL,
    workspace  TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      BYTEA  NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, workspace, key)
);

CREATE TABLE job_runs (
    id          BIGSERIAL PRIMARY KEY,
    plugin      TEXT COLLATE "C" NOT NULL,
    job         TEXT COLLATE "C" NOT NULL,
    slot        BIGINT,
    attempt     BIGINT NOT NULL,
    runner      TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    report      TEXT,
    error       TEXT
);
CREATE UNIQUE INDEX job_runs_one_per_slot ON job_runs (plugin, job, slot, attempt) WHERE slot IS NOT NULL;
CREATE INDEX job_runs_recent ON job_runs (plugin, job, id);

CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT   NOT NULL,
    token      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE insights (
    id         BIGSERIAL PRIMARY KEY,
    workspace  TEXT COLLATE "C" NOT NULL,
    plugin     TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    title      TEXT   NOT NULL,
    detail     TEXT   NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    impact     DOUBLE PRECISION NOT NULL,
    data       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX insights_recent ON insights (workspace, plugin, created_at);

CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    workspace       TEXT COLLATE "C" NOT NULL,
    plugin          TEXT COLLATE "C" NOT NULL,
    severity        TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    message         TEXT   NOT NULL,
    dedup_key       TEXT COLLATE "C" NOT NULL,
    data            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    occurrences     BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE UNIQUE INDEX alerts_open ON alerts (workspace, plugin, dedup_key) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_recent ON alerts (workspace, last_seen_at);

CREATE TABLE improvements (
    id            BIGSERIAL PRIMARY KEY,
    workspace     TEXT COLLATE "C" NOT NULL,
    plugin        TEXT COLLATE "C" NOT NULL,
    target        TEXT COLLATE "C" NOT NULL,
    version       BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    params        TEXT   NOT NULL,
    evidence      TEXT   NOT NULL,
    metric        TEXT   NOT NULL,
    expected_gain DOUBLE PRECISION NOT NULL,
    backtest      TEXT,
    history       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (workspace, plugin, target, version)
);
CREATE INDEX improvements_recent ON improvements (workspace, plugin, created_at);

CREATE TABLE api_keys (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT   NOT NULL,
    prefix     TEXT   NOT NULL,
    hash       BYTEA  NOT NULL UNIQUE,
    workspace  TEXT COLLATE "C",
    role       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
