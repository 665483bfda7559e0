package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AuditEntry is one stored decision. It never holds a password or a code.
type AuditEntry struct {
	Time           time.Time
	User           string
	Client         string
	CallingStation string
	Source         string        // the NAS's address:port
	Result         string        // accept, reject, challenge or dropped
	Reason         string        // the reject or drop reason
	Duration       time.Duration // time to decide
}

// Audit records ride in the group-commit writer's transactions (writer.go):
// each batch of replay-state writes also inserts the entries queued so far,
// so decisions share the batch's one fsync and never hold the write
// connection in a transaction of their own. When no logins come, the writer
// flushes them every auditInterval. The hot path only hands an entry over a
// bounded channel and never waits for the disk. If the channel is full (the
// disk cannot keep up), the entry is counted in AuditDropped instead of
// slowing logins down; the decision log line still has it.
const (
	auditQueue    = 1 << 14
	auditBatch    = 1024 // entries per transaction at most
	auditInterval = 100 * time.Millisecond
	pruneChunk    = 10000
	maxAuditField = 256 // bytes kept of user, client, station (NAS-supplied text)
)

type auditLog struct {
	mu      sync.RWMutex // Audit holds it to send; Close to close ch
	closed  bool
	ch      chan AuditEntry
	dropped atomic.Uint64
	written atomic.Uint64
}

// startAudit makes the audit queue, which the writer goroutine drains.
func (db *DB) startAudit() {
	db.audit = &auditLog{ch: make(chan AuditEntry, auditQueue)}
}

// Audit queues e for writing. It never blocks. After Close it drops e.
func (db *DB) Audit(e AuditEntry) {
	a := db.audit
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.dropped.Add(1)
		return
	}
	select {
	case a.ch <- e:
	default:
		a.dropped.Add(1)
	}
}

// closeAudit makes Audit drop from now on and closes the channel, so that
// the writer can drain what is left.
func (db *DB) closeAudit() {
	a := db.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
}

// AuditStats reports entries written and entries dropped (the queue was
// full, the write failed, or they came after Close).
func (db *DB) AuditStats() (written, dropped uint64) {
	return db.audit.written.Load(), db.audit.dropped.Load()
}

// takeAudit moves up to auditBatch queued entries into buf without waiting.
// It reports false when the channel is closed and empty.
func (db *DB) takeAudit(buf []AuditEntry) ([]AuditEntry, bool) {
	for len(buf) < auditBatch {
		select {
		case e, ok := <-db.audit.ch:
			if !ok {
				return buf, false
			}
			buf = append(buf, e)
		default:
			return buf, true
		}
	}
	return buf, true
}

func clip(s string) string {
	if len(s) > maxAuditField {
		return s[:maxAuditField]
	}
	return s
}

// auditRows are the row counts of the multi-row INSERTs that write a batch:
// a batch is cut into as many of the largest as fit, then the smaller ones.
// A few fixed sizes keep each one a cached prepared statement.
var auditRows = [...]int{64, 16, 4, 1}

// auditInserts holds the INSERT for each of auditRows.
var auditInserts = func() (q [len(auditRows)]string) {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?)"
	for i, n := range auditRows {
		q[i] = `INSERT INTO audit (time, user, client, calling_station, source, result, reason, duration_us) VALUES ` +
			strings.Repeat(row+", ", n-1) + row
	}
	return q
}()

// insertAudit adds the entries to tx inside a savepoint: an entry that
// cannot be written (which would fail the whole transaction) must not cost
// the batch's logins their commit. It reports whether they were written.
// Rows go in a few multi-row INSERTs (a statement per row was 4 % of the
// CPU at capacity).
func insertAudit(ctx context.Context, tx *sql.Tx, entries []AuditEntry) bool {
	if len(entries) == 0 {
		return true
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT audit`); err != nil {
		return false
	}
	args := make([]any, 0, 8*auditRows[0])
	for i := 0; len(entries) > 0; {
		n := auditRows[i]
		if n > len(entries) {
			i++
			continue
		}
		args = args[:0]
		for _, e := range entries[:n] {
			args = append(args, e.Time.UnixMilli(), clip(e.User), clip(e.Client), clip(e.CallingStation),
				clip(e.Source), e.Result, e.Reason, e.Duration.Microseconds())
		}
		if _, err := tx.ExecContext(ctx, auditInserts[i], args...); err != nil {
			tx.ExecContext(ctx, `ROLLBACK TO audit`)
			tx.ExecContext(ctx, `RELEASE audit`)
			return false
		}
		entries = entries[n:]
	}
	_, err := tx.ExecContext(ctx, `RELEASE audit`)
	return err == nil
}

type AuditQuery struct {
	User  string    // "" = everyone
	Since time.Time // zero = all
	Limit int       // 0 = 1000; the newest are returned
}

// QueryAudit returns matching entries, oldest first.
func (db *DB) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var where []string
	var args []any
	if q.User != "" {
		where = append(where, "user = ? COLLATE NOCASE") // as typed; ALICE is alice
		args = append(args, q.User)
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, q.Since.UnixMilli())
	}
	query := `SELECT id, time, user, client, calling_station, source, result, reason, duration_us FROM audit`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query = `SELECT * FROM (` + query + ` ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id`
	args = append(args, q.Limit)
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var id, ms, us int64
		if err := rows.Scan(&id, &ms, &e.User, &e.Client, &e.CallingStation, &e.Source, &e.Result, &e.Reason, &us); err != nil {
			return nil, fmt.Errorf("store: query audit: %w", err)
		}
		e.Time, e.Duration = time.UnixMilli(ms), time.Duration(us)*time.Microsecond
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	return out, nil
}

// PruneAudit deletes entries older than before, in chunks so that the
// writer is never held for long, and returns how many it deleted.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.w.ExecContext(ctx, `DELETE FROM audit WHERE id IN
			(SELECT id FROM audit WHERE time < ? ORDER BY time LIMIT ?)`, before.UnixMilli(), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("store: prune audit: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
