-- The notification outbox: one row per event, written in the same
-- transaction as its cause; `routed` turns 1 when the deliverer has made
-- its deliveries (one per matching destination).
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uid         TEXT    NOT NULL UNIQUE,
    workspace   TEXT,
    plugin      TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL,
    link        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    routed      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_unrouted ON notifications (id) WHERE routed = 0;

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    destination     TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    UNIQUE (notification_id, destination)
);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (status, id);
