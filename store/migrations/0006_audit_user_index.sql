-- audit_user_time (0003) was never used: audit queries match the user
-- without regard to ASCII case (user = ? COLLATE NOCASE), which an index in
-- the column's BINARY order cannot serve. It still cost a write to a random
-- index page for every decision, about half of the pages each login adds to
-- the write-ahead log. Queries by user scan audit_time, newest first.
DROP INDEX IF EXISTS audit_user_time;
