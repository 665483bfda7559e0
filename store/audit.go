package store

import (
	"context"
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

// Audit records are written by their own goroutine in batches (one
// transaction per batch), so the hot path only hands an entry over a bounded
// channel and never waits for the disk. If the channel is full (the disk
// cannot keep up), the entry is counted in AuditDropped instead of slowing
// logins down; the decision log line still has it.
const (
	auditQueue    = 1 << 14
	auditBatch    = 1024
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
	done    chan struct{}
}

// startAudit starts the audit writer; Close stops it after flushing.
func (db *DB) startAudit() {
	db.audit = &auditLog{ch: make(chan AuditEntry, auditQueue), done: make(chan struct{})}
	go db.auditRun()
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

// stopAudit flushes the queued entries and stops the writer.
func (db *DB) stopAudit() {
	a := db.audit
	a.mu.Lock()
	a.closed = true
	close(a.ch)
	a.mu.Unlock()
	<-a.done
}

// AuditStats reports entries written and entries dropped because the queue
// was full.
func (db *DB) AuditStats() (written, dropped uint64) {
	return db.audit.written.Load(), db.audit.dropped.Load()
}

func (db *DB) auditRun() {
	defer close(db.audit.done)
	batch := make([]AuditEntry, 0, auditBatch)
	tick := time.NewTicker(auditInterval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := db.writeAudit(batch); err != nil {
			db.audit.dropped.Add(uint64(len(batch)))
		} else {
			db.audit.written.Add(uint64(len(batch)))
		}
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-db.audit.ch:
			if !ok {
				flush()
				return
			}
			batch = append(batch, e)
			if len(batch) == auditBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func clip(s string) string {
	if len(s) > maxAuditField {
		return s[:maxAuditField]
	}
	return s
}

func (db *DB) writeAudit(batch []AuditEntry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO audit (time, user, client, calling_station, source, result, reason, duration_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range batch {
		if _, err := st.ExecContext(ctx, e.Time.UnixMilli(), clip(e.User), clip(e.Client), clip(e.CallingStation),
			clip(e.Source), e.Result, e.Reason, e.Duration.Microseconds()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// AuditQuery selects audit entries.
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
