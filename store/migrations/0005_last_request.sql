-- The request that used a token's last step: a fingerprint of the NAS's
-- source address and port, RADIUS Identifier and Request Authenticator, and
-- when. After a restart (the in-memory reply cache is gone) the NAS's
-- identical retransmit of an accepted request is answered Accept again
-- instead of being rejected as a replay (RFC 5080 2.2.2).
ALTER TABLE tokens ADD COLUMN last_request BLOB NOT NULL DEFAULT x'';
ALTER TABLE tokens ADD COLUMN last_accept_at INTEGER NOT NULL DEFAULT 0;
