
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    prefix     TEXT    NOT NULL,
    -- SHA-256 of the key; the key itself is never stored.
    hash       BLOB    NOT NULL UNIQUE,
    workspace  TEXT,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
