-- User names are unique and looked up without regard to ASCII case, so that
-- "ALICE" is alice (the same tokens, the same lockout counter) for
-- directories that match names case-insensitively (LDAP, AD), and can never
-- become a second account. SQLite's NOCASE folds ASCII letters only.
CREATE UNIQUE INDEX users_name_nocase ON users (name COLLATE NOCASE);
