// Package store keeps radotp's users and TOTP tokens in SQLite.
//
// # Connections
//
// A DB holds two pools on one file: a one-connection pool for writes, whose
// transactions start with BEGIN IMMEDIATE (the write lock is taken up front,
// so a transaction waits for another writer instead of failing half-way), and
// a pool of query-only connections for reads. Every connection runs in WAL
// mode with synchronous=FULL, foreign keys on and a busy timeout. That lets
// the server and the admin CLI open the same file at once: readers never
// wait, and writers queue on SQLite's lock for up to the busy timeout.
//
// # Group commit
//
// The verifier's writes (CommitSuccess, ResetFailures, RecordFailure) must be
// durable before the RADIUS reply goes out, and with synchronous=FULL every
// commit costs an fsync. So one writer goroutine owns them: it takes one op
// from a bounded queue, adds whatever else is already queued (up to maxBatch),
// runs them all in one transaction and commits once. Concurrent logins share
// one fsync instead of queueing for one each. If the batch's transaction
// fails, its ops are run again one per transaction, so one bad op cannot fail
// the others. Admin methods are rare and use the write pool directly.
//
// Each invariant is a single conditional statement (the replay guard is
// "UPDATE tokens ... WHERE last_step < ?"), so a PostgreSQL store shared by
// several nodes can enforce it the same way.
//
// # Sealed secrets and the key file
//
// Token secrets are sealed with AES-256-GCM and stored as a random 12-byte
// nonce followed by the ciphertext. The associated data is "radotp token"
// and the token's id, so a sealed secret copied to another row does not open.
// AddToken inserts the row, then seals with its id, in one transaction.
//
// The 32-byte key lives in its own file as base64 text. Open creates it (mode
// 0600, never overwriting) when both the file and the database are new, and
// refuses a key file that group or others can access. The database keeps a
// key check value (a sealed constant) in its meta table, so opening it with
// another key fails at once instead of failing every login later.
//
// Times are stored as INTEGER unix milliseconds, 0 meaning the zero time.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2" // jitter only
	"net/url"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Options configures Open.
type Options struct {
	Path        string           // SQLite database file; created if missing
	KeyFile     string           // sealing key file; created if missing and the database is new
	Now         func() time.Time // clock; nil means time.Now
	BusyTimeout time.Duration    // how long to wait for another writer; 0 means 5s
}

// DB is an open radotp database. Its methods are safe for concurrent use.
type DB struct {
	path    string
	keyFile string
	now     func() time.Time

	w        *sql.DB     // writes: one connection, BEGIN IMMEDIATE
	r        *sql.DB     // reads: query-only connections
	aead     cipher.AEAD // seals token secrets
	stateKey []byte      // signs challenge State (ChallengeKey)
	audit    *auditLog   // batched decision records (audit.go)

	ops  chan *op      // to the writer goroutine; bounded
	quit chan struct{} // closed by Close: the writer finishes the queued ops and exits
	done chan struct{} // closed by the writer when it has exited

	closeOnce sync.Once
	closeErr  error

	txs, nops, fallbacks atomic.Uint64
}

// Stats counts the work of the group-commit writer.
type Stats struct {
	Transactions uint64 // write transactions it committed
	Ops          uint64 // ops committed in them
	Fallbacks    uint64 // batches whose transaction failed and were re-run one op per transaction
}

// Stats returns the writer's counters so far.
func (db *DB) Stats() Stats {
	return Stats{
		Transactions: db.txs.Load(),
		Ops:          db.nops.Load(),
		Fallbacks:    db.fallbacks.Load(),
	}
}

// Open opens (creating if needed) the database at opts.Path, brings its schema
// up to date, loads the sealing key and starts the writer. Close it when done.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("store: open: no database path")
	}
	if opts.KeyFile == "" {
		return nil, fmt.Errorf("store: open %s: no key file", opts.Path)
	}
	if strings.ContainsRune(opts.Path, '?') {
		// The driver reads everything after '?' as connection parameters.
		return nil, fmt.Errorf("store: open %s: the path must not contain '?'", opts.Path)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	db := &DB{
		path:    opts.Path,
		keyFile: opts.KeyFile,
		now:     opts.Now,
		ops:     make(chan *op, queueSize),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if db.now == nil {
		db.now = time.Now
	}
	// Several processes opening a new database at the same moment (the
	// server and an admin command) can find it busy while another sets it
	// up: switching to WAL or creating the schema may return SQLITE_BUSY
	// without waiting. Setting up again is safe (each step is idempotent),
	// so a busy database is retried for as long as the busy timeout.
	deadline := time.Now().Add(busy)
	for {
		err := db.open(ctx, busy)
		if err == nil {
			break
		}
		if db.r != nil {
			db.r.Close()
		}
		if db.w != nil {
			db.w.Close()
		}
		db.r, db.w = nil, nil
		if !isBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(time.Duration(10+mrand.IntN(40)) * time.Millisecond)
	}
	db.startAudit()
	go db.run()
	return db, nil
}

// isBusy reports whether err is SQLite's "database is locked" (BUSY/LOCKED).
func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

func (db *DB) open(ctx context.Context, busy time.Duration) error {
	if err := createPrivate(db.path); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, unwrapPath(err))
	}

	var err error
	if db.w, err = sql.Open("sqlite3", dsn(db.path, busy, true)); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetConnMaxIdleTime(0)
	db.w.SetConnMaxLifetime(0)
	// The first connection switches the file to WAL; a file that is not a
	// SQLite database fails here ("file is not a database") and is left alone.
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}

	if db.r, err = sql.Open("sqlite3", dsn(db.path, busy, false)); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}

	return db.loadKey(ctx)
}

// dsn returns the go-sqlite3 data source name for a writer or a reader pool.
// The driver applies these settings to every new connection.
func dsn(path string, busy time.Duration, write bool) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_synchronous", "FULL")
	v.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	v.Set("_foreign_keys", "on")
	v.Set("_stmt_cache_size", "32") // per connection; reuses prepared statements
	if write {
		v.Set("_txlock", "immediate")
	} else {
		v.Set("_query_only", "on")
	}
	return path + "?" + v.Encode()
}

// createPrivate creates an empty database file with mode 0600 if there is
// none. SQLite treats an empty file as a new database and creates the -wal
// and -shm files with the database file's mode, so password hashes and
// sealed secrets are never readable by others.
func createPrivate(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// It holds password hashes and sealed secrets: like the key file,
		// it must not be open to group or others (a restored copy may be).
		fi, err := os.Stat(name)
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return fmt.Errorf("the database file can be read or written by group or others (mode %#o); run chmod 600 %s", perm, name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// unwrapPath drops the *fs.PathError layer, whose message repeats the path
// our own message already names.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// Close lets the writer finish the ops already queued, then closes the
// database. Hot-path methods called after Close return an error.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.quit)
		<-db.done // the writer has finished the queued ops and audit entries
		err := errors.Join(db.r.Close(), db.w.Close())
		if err != nil {
			db.closeErr = fmt.Errorf("store: close %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations, by version. A file is named
// NNNN_what.sql; NNNN is its version.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		prefix, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a version number", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations the database lacks, each in its
// own transaction together with its row in schema_migrations.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	latest := ms[len(ms)-1].version

	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.path, err)
	}
	var have int
	if err := db.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.path, err)
	}
	if have > latest {
		return fmt.Errorf("store: database %s has schema version %d, but this radotp knows versions up to %d only; use a newer radotp", db.path, have, latest)
	}
	applied := make(map[int]bool)
	rows, err := db.w.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.path, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate %s: %w", db.path, err)
		}
		applied[v] = true
	}
	rows.Close()
	// Every migration not yet recorded is applied, not only those above the
	// highest: migrations written on different branches may land out of order.
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if m.version == 4 { // 0004: user names unique without regard to ASCII case
			if err := db.caseDuplicates(ctx); err != nil {
				return err
			}
		}
		if err := db.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("store: migrate %s: %s: %w", db.path, m.name, err)
		}
	}
	return nil
}

// caseDuplicates fails, naming them, if user names differ only in ASCII
// case, which migration 0004 forbids: the admin must delete or rename one of
// each pair first (radotp user delete works before the migration).
func (db *DB) caseDuplicates(ctx context.Context) error {
	rows, err := db.w.QueryContext(ctx, `SELECT group_concat(name, ', ') FROM users
		GROUP BY name COLLATE NOCASE HAVING count(*) > 1`)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.path, err)
	}
	defer rows.Close()
	var dups []string
	for rows.Next() {
		var names string
		if err := rows.Scan(&names); err != nil {
			return fmt.Errorf("store: migrate %s: %w", db.path, err)
		}
		dups = append(dups, "{"+names+"}")
	}
	if len(dups) > 0 {
		return fmt.Errorf("store: migrate %s: user names must now be unique without regard to case, but these differ only in case: %s; "+
			"delete all but one of each with an older radotp (or sqlite3), then start again", db.path, strings.Join(dups, " "))
	}
	return rows.Err()
}

func (db *DB) applyMigration(ctx context.Context, m migration) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	// Another process may have applied it since we looked; BEGIN IMMEDIATE
	// holds the write lock, so this answer stays true until we commit.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, toMS(db.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// toMS and fromMS convert between time.Time and the stored unix milliseconds.
func toMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// isUnique reports whether err is a UNIQUE constraint violation.
func isUnique(err error) bool {
	se, ok := errors.AsType[sqlite3.Error](err)
	return ok && se.ExtendedCode == sqlite3.ErrConstraintUnique
}
