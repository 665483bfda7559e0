package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testOptions returns options for a new database in a fresh temporary directory.
func testOptions(tb testing.TB) Options {
	tb.Helper()
	dir := tb.TempDir()
	return Options{Path: filepath.Join(dir, "radotp.db"), KeyFile: filepath.Join(dir, "radotp.key")}
}

// mustOpenOptions opens a database and closes it when the test ends.
func mustOpenOptions(tb testing.TB, opts Options) *DB {
	tb.Helper()
	db, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// mustOpen opens a new database in a temporary directory.
func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	return mustOpenOptions(tb, testOptions(tb))
}

func mustCreateUser(tb testing.TB, db *DB, name string) User {
	tb.Helper()
	u, err := db.CreateUser(context.Background(), User{Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func mustAddToken(tb testing.TB, db *DB, name string) Token {
	tb.Helper()
	t, err := db.AddToken(context.Background(), name, Token{
		Secret: randomBytes(20), Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestOpen_Pragmas(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	opts.BusyTimeout = 1500 * time.Millisecond
	db := mustOpenOptions(t, opts)

	for _, pool := range []struct {
		name      string
		queryOnly int
	}{{"writer", 0}, {"reader", 1}} {
		t.Run(pool.name, func(t *testing.T) {
			p := db.w
			if pool.name == "reader" {
				p = db.r
			}
			conn, err := p.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var mode string
			if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Errorf("journal_mode = %q, want wal", mode)
			}
			for _, want := range []struct {
				pragma string
				value  int
			}{
				{"synchronous", 2}, // FULL
				{"foreign_keys", 1},
				{"busy_timeout", 1500},
				{"query_only", pool.queryOnly},
			} {
				var got int
				if err := conn.QueryRowContext(ctx, `PRAGMA `+want.pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want.value {
					t.Errorf("%s = %d, want %d", want.pragma, got, want.value)
				}
			}
		})
	}
}

func TestOpen_DefaultBusyTimeout(t *testing.T) {
	db := mustOpen(t)
	var ms int
	if err := db.r.QueryRow(`PRAGMA busy_timeout`).Scan(&ms); err != nil {
		t.Fatal(err)
	}
	if ms != 5000 {
		t.Errorf("busy_timeout = %d, want 5000", ms)
	}
}

func TestOpen_Migrations(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	first := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	opts.Now = func() time.Time { return first }

	type row struct {
		version   int
		name      string
		appliedAt int64
	}
	applied := func(db *DB) []row {
		t.Helper()
		rows, err := db.r.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var rs []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.version, &r.name, &r.appliedAt); err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		return rs
	}

	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := applied(db)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) || len(got) == 0 {
		t.Fatalf("applied %v, want %d migrations", got, len(ms))
	}
	if got[0] != (row{1, "0001_init.sql", first.UnixMilli()}) {
		t.Errorf("first migration recorded as %+v", got[0])
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening applies nothing: the rows keep their first applied_at.
	opts.Now = func() time.Time { return first.Add(time.Hour) }
	db = mustOpenOptions(t, opts)
	again := applied(db)
	if len(again) != len(got) || again[0] != got[0] {
		t.Errorf("after reopen: %v, want %v", again, got)
	}
}

func TestOpen_NewerSchema(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(ctx, opts)
	if err == nil {
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	for _, want := range []string{"store: ", opts.Path, "schema version 9999", "newer radotp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestOpen_NotADatabase(t *testing.T) {
	opts := testOptions(t)
	junk := randomBytes(8192)
	if err := os.WriteFile(opts.Path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), opts)
	if err == nil {
		db.Close()
		t.Fatal("Open of a file of random bytes succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "store: open "+opts.Path+": ") || !strings.Contains(msg, "not a database") {
		t.Errorf("error %q does not say that the file is not a database", msg)
	}
	after, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, junk) {
		t.Error("Open changed the file")
	}
	if _, err := os.Stat(opts.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key file created for a database that failed to open (stat: %v)", err)
	}
}

func TestOpen_FileModes(t *testing.T) {
	opts := testOptions(t)
	mustOpenOptions(t, opts)
	for _, name := range []string{opts.Path, opts.Path + "-wal", opts.KeyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(name), perm)
		}
	}
}

func TestOpen_BadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"NoPath":        {KeyFile: "k"},
		"NoKeyFile":     {Path: filepath.Join(t.TempDir(), "x.db")},
		"QuestionMark":  {Path: filepath.Join(t.TempDir(), "x?.db"), KeyFile: "k"},
		"NoSuchDir":     {Path: filepath.Join(t.TempDir(), "nodir", "x.db"), KeyFile: "k"},
		"DirectoryPath": {Path: t.TempDir(), KeyFile: filepath.Join(t.TempDir(), "k")},
	} {
		t.Run(name, func(t *testing.T) {
			db, err := Open(context.Background(), opts)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("error %q does not start with store: ", err)
			}
		})
	}
}

// TestTwoOpeners has the server and the admin CLI write the same file at
// once, each through its own *DB, as two processes would.
func TestTwoOpeners(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	server := mustOpenOptions(t, opts)
	cli := mustOpenOptions(t, opts)

	alice := mustCreateUser(t, cli, "alice")
	tok := mustAddToken(t, cli, "alice")
	if _, err := server.UserAuth(ctx, "alice"); err != nil {
		t.Fatalf("server does not see the CLI's user: %v", err)
	}

	const n = 100
	errs := make(chan error, 2*n)
	done := make(chan struct{})
	go func() { // the server's logins
		defer close(done)
		for step := int64(1); step <= n; step++ {
			ok, err := server.CommitSuccess(ctx, alice.ID, tok.ID, step, 0)
			if err == nil && !ok {
				err = errors.New("CommitSuccess of a new step reported a replay")
			}
			errs <- err
		}
	}()
	for i := range n { // the admin's commands, meanwhile
		_, err := cli.CreateUser(ctx, User{Name: "user" + string(rune('a'+i%26)) + strings.Repeat("x", i)})
		errs <- err
	}
	<-done
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	u, err := cli.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Tokens[0].LastStep != n {
		t.Errorf("CLI sees last step %d, want %d", u.Tokens[0].LastStep, n)
	}
	users, err := server.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n+1 {
		t.Errorf("server sees %d users, want %d", len(users), n+1)
	}
}

// A database file open to others (a copy restored with cp and a loose
// umask) is refused with the command that fixes it.
func TestOpen_DatabaseModeRefused(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key")}
	db := mustOpenOptions(t, opts)
	db.Close()
	if err := os.Chmod(opts.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+opts.Path) {
		t.Fatalf("Open of a 0644 database: %v", err)
	}
}

// Migration 0004 (names unique without regard to case) on a database that
// already holds names differing only in case: a clear error naming them,
// nothing half-migrated.
func TestMigration4CaseDuplicates(t *testing.T) {
	opts := testOptions(t)
	db := mustOpenOptions(t, opts)
	db.Close()
	raw, err := sql.Open("sqlite3", "file:"+opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX users_name_nocase`,
		`DELETE FROM schema_migrations WHERE version >= 4`,
		`INSERT INTO users (name, created_at) VALUES ('alice', 0), ('Alice', 0), ('bob', 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	_, err = Open(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "differ only in case") || !strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "bob") {
		t.Fatalf("Open with case duplicates: %v", err)
	}
}
