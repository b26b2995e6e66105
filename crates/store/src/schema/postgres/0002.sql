-- The notification outbox: one row per event, written in the same
-- transaction as its cause; `routed` turns true when the deliverer has made
-- its deliveries (one per matching destination).
CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    uid         TEXT COLLATE "C" NOT NULL UNIQUE,
    workspace   TEXT COLLATE "C",
    plugin      TEXT COLLATE "C" NOT NULL,
    event       TEXT COLLATE "C" NOT NULL,
    severity    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    dedup_key   TEXT COLLATE "C" NOT NULL,
    link        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    occurred_at BIGINT  NOT NULL,
    routed      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX notifications_unrouted ON notifications (id) WHERE NOT routed;

CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    notification_id BIGINT  NOT NULL REFERENCES notifications (id),
    destination     TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    finished_at     BIGINT,
    UNIQUE (notification_id, destination)
);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (status, id);
