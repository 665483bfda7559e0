-- One row per decision: who, where, what, why, how long. Never a password
-- or a code. Pruned by time (audit.retention).
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    time            INTEGER NOT NULL,           -- unix milliseconds
    user            TEXT    NOT NULL,
    client          TEXT    NOT NULL,
    calling_station TEXT    NOT NULL DEFAULT '',
    source          TEXT    NOT NULL DEFAULT '', -- NAS address:port
    result          TEXT    NOT NULL,           -- accept | reject | challenge | dropped
    reason          TEXT    NOT NULL DEFAULT '',
    duration_us     INTEGER NOT NULL
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_user_time ON audit (user, time);
