-- 0001: users, their TOTP tokens, and a small key/value table.
-- Times are INTEGER unix milliseconds; 0 stands for "never" (the zero time).

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

-- AUTOINCREMENT: ids are never reused, so a sealed secret (bound to its
-- token id) from a deleted row or an old backup can never fit a newer row.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT    NOT NULL UNIQUE,
	email         TEXT    NOT NULL DEFAULT '',
	password_hash TEXT    NOT NULL DEFAULT '',
	policy        TEXT    NOT NULL DEFAULT '',
	failures      INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	secret     BLOB    NOT NULL, -- nonce || AES-256-GCM ciphertext
	algorithm  TEXT    NOT NULL,
	digits     INTEGER NOT NULL,
	period     INTEGER NOT NULL, -- seconds
	state      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	active_at  INTEGER NOT NULL DEFAULT 0,
	last_step  INTEGER NOT NULL DEFAULT 0,
	drift      INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX tokens_user_id ON tokens (user_id);
