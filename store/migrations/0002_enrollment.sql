-- 0002: one-time enrollment links.
--
-- A link is given to one user (by an admin, an invitation mail, the
-- self-service login, a mail sent when a user without a token logged in, or
-- an identity portal through the API). Only the SHA-256 of the link's random
-- token is stored. The secret the user's app gets is chosen when the link is
-- made and kept here, sealed with the key file and bound to the link's id,
-- until the user confirms it with a code; then it becomes a token and is
-- cleared from the link.
CREATE TABLE enroll_links (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash  BLOB    NOT NULL UNIQUE, -- SHA-256 of the token in the URL
	purpose     TEXT    NOT NULL,        -- admin, invite, login, need, api
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER NOT NULL DEFAULT 0, -- confirmed with a right code
	voided_at   INTEGER NOT NULL DEFAULT 0,
	void_reason TEXT    NOT NULL DEFAULT '', -- attempts, replaced
	attempts    INTEGER NOT NULL DEFAULT 0, -- wrong codes so far
	secret      BLOB    NOT NULL,           -- nonce || AES-256-GCM ciphertext; empty once closed
	algorithm   TEXT    NOT NULL,
	digits      INTEGER NOT NULL,
	period      INTEGER NOT NULL,           -- seconds
	token_id    INTEGER NOT NULL DEFAULT 0  -- the token the confirmation created
);

CREATE INDEX enroll_links_user ON enroll_links (user_id, purpose, created_at);
CREATE INDEX enroll_links_expires ON enroll_links (expires_at);
