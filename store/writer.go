package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

const (
	queueSize = 1024 // ops waiting for the writer; beyond that, callers wait
	maxBatch  = 256  // ops per transaction
)

var errClosed = errors.New("store: database is closed")

type opKind uint8

const (
	opCommitSuccess opKind = iota
	opResetFailures
	opRecordFailure
	opTouch
)

// An op's state decides, without a race, whether a caller that gives up may
// still have its op run: only an op the writer has not taken yet can be
// abandoned; a taken op runs and its caller waits for the true result, so a
// committed step is never reported as a failure (the NAS's retry would then
// be rejected as a replay).
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// ErrLocked is returned by CommitSuccess when the user is locked out: the
// step is not used, even if the code was right.
var ErrLocked = errors.New("store: user is locked out")

// op is one hot-path write, queued for the writer goroutine.
type op struct {
	ctx  context.Context
	kind opKind

	userID  int64
	tokenID int64  // opCommitSuccess
	step    int64  // opCommitSuccess
	drift   int    // opCommitSuccess
	max     int64  // opRecordFailure: failures that lock
	until   int64  // opRecordFailure: locked_until if this failure locks, unix ms
	now     int64  // opCommitSuccess: unix ms; a user locked past it wins nothing
	request []byte // opCommitSuccess: fingerprint of the request (Token.LastRequest)

	state atomic.Int32 // opQueued, opTaken, opAbandoned

	// Set by the writer before it closes done.
	ok     bool
	locked bool // opCommitSuccess: not run because the user is locked
	err    error
	done   chan struct{}
}

// CommitSuccess records step as used for the token, but only if step is
// greater than the token's last step, and then resets the user's failure
// count, in one durable transaction. It reports false if the step was not
// greater (a replay) or the token is not the user's.
//
// A user locked out when the transaction runs wins nothing: CommitSuccess
// then returns false and ErrLocked, so that requests racing a lockout cannot
// slip an Accept through.
func (db *DB) CommitSuccess(ctx context.Context, userID, tokenID, step int64, drift int) (bool, error) {
	return db.CommitSuccessOf(ctx, userID, tokenID, step, drift, nil)
}

// CommitSuccessOf is CommitSuccess that also records request, a fingerprint
// of the RADIUS request that used the step (Token.LastRequest), with the
// time, in the same conditional UPDATE.
func (db *DB) CommitSuccessOf(ctx context.Context, userID, tokenID, step int64, drift int, request []byte) (bool, error) {
	o := &op{kind: opCommitSuccess, userID: userID, tokenID: tokenID, step: step, drift: drift, now: toMS(db.now()), request: request}
	ok, err := db.do(ctx, o)
	if err == nil && o.locked {
		return false, ErrLocked
	}
	return ok, err
}

// Touch makes one durable write for the user that changes nothing. The
// verifier calls it before answering a right password with a Challenge or an
// Accept without a code, so that when storage cannot take writes a right
// password is dropped exactly like a wrong one (whose failure cannot be
// counted): no oracle, no uncounted guessing.
func (db *DB) Touch(ctx context.Context, userID int64) error {
	_, err := db.do(ctx, &op{kind: opTouch, userID: userID})
	return err
}

// ResetFailures sets the user's failure count to 0. An unknown user is not
// an error: there is nothing to reset.
func (db *DB) ResetFailures(ctx context.Context, userID int64) error {
	_, err := db.do(ctx, &op{kind: opResetFailures, userID: userID})
	return err
}

// RecordFailure counts one failure for the user. The failure that brings the
// count to max locks the user until now+lockFor and restarts the count at 0;
// RecordFailure then reports true. max < 1 counts without ever locking.
// An unknown user is ErrNotFound.
func (db *DB) RecordFailure(ctx context.Context, userID int64, max int, lockFor time.Duration) (bool, error) {
	limit := int64(max)
	if max < 1 {
		limit = math.MaxInt64
	}
	until := toMS(db.now().Add(lockFor))
	return db.do(ctx, &op{kind: opRecordFailure, userID: userID, max: limit, until: until})
}

// do hands o to the writer and waits for its result.
func (db *DB) do(ctx context.Context, o *op) (bool, error) {
	o.ctx = ctx
	o.done = make(chan struct{})
	select {
	case <-db.quit:
		return false, errClosed
	default:
	}
	// A caller that has already given up queues nothing (select would pick
	// a ready send as readily as the done context).
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	select {
	case db.ops <- o:
	case <-db.quit:
		return false, errClosed
	case <-ctx.Done():
		return false, fmt.Errorf("store: %w", ctx.Err())
	}
	select {
	case <-o.done:
		return o.ok, o.err
	case <-ctx.Done():
	case <-db.done:
	}
	if o.state.CompareAndSwap(opQueued, opAbandoned) {
		// Not taken: the writer will skip it, nothing was or will be written.
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		// The writer exited (Close) after it had drained the queue, and o
		// came in later.
		return false, errClosed
	}
	// Taken: it runs (or ran), and its true result follows its batch's
	// transaction, or, when that fails, the batch's one-op retries (each
	// bounded by the busy timeout + a commit).
	<-o.done
	return o.ok, o.err
}

// run is the writer goroutine: it commits the queued ops in batches, each
// with the audit entries queued so far, until Close; then the ops still
// queued, then the rest of the audit entries.
func (db *DB) run() {
	defer close(db.done)
	batch := make([]*op, 0, maxBatch)
	audit := make([]AuditEntry, 0, auditBatch)
	tick := time.NewTicker(auditInterval) // flushes audit entries when no op comes
	defer tick.Stop()
	for {
		select {
		case o := <-db.ops:
			batch = append(batch, o)
		case <-tick.C:
		case <-db.quit:
			for {
				batch = db.fill(batch)
				if len(batch) == 0 {
					break
				}
				audit, _ = db.takeAudit(audit)
				db.commit(batch, audit)
				clear(batch)
				batch, audit = batch[:0], audit[:0]
			}
			// No op can come any more: stop the audit queue and write
			// what it holds.
			db.closeAudit()
			for more := true; more; {
				audit, more = db.takeAudit(audit)
				db.commit(nil, audit)
				audit = audit[:0]
			}
			return
		}
		batch = db.fill(batch)
		audit, _ = db.takeAudit(audit)
		db.commit(batch, audit)
		clear(batch) // drop the references to finished ops
		batch, audit = batch[:0], audit[:0]
	}
}

// fill adds to batch the ops already queued, without waiting for more.
func (db *DB) fill(batch []*op) []*op {
	for len(batch) < maxBatch {
		select {
		case o := <-db.ops:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commit runs the batch and the audit entries in one transaction, or, if
// that fails, each op in its own transaction and then the entries in one;
// then it answers every caller.
func (db *DB) commit(batch []*op, audit []AuditEntry) {
	if len(batch) == 0 && len(audit) == 0 {
		return
	}
	live := batch
	written, err := db.runTx(live, audit)
	if err != nil {
		switch {
		case len(live) == 1 && len(audit) == 0:
			live[0].err = err // nothing else in the transaction to blame
		case len(live) > 0:
			// Each op alone, without the audit entries: an entry whose
			// insert aborts the whole transaction (SQLITE_FULL, IOERR,
			// a trigger's RAISE(ROLLBACK): more than the savepoint can
			// undo) must not cost a login its commit.
			if len(live) > 1 {
				db.fallbacks.Add(1)
			}
			for i, o := range live {
				_, o.err = db.runTx(live[i:i+1], nil)
			}
		}
		if len(audit) > 0 {
			written, _ = db.runTx(nil, audit) // not lost to an op's failure
		}
	}
	if written {
		db.audit.written.Add(uint64(len(audit)))
	} else {
		db.audit.dropped.Add(uint64(len(audit)))
	}
	clear(audit) // the strings are the callers'
	for _, o := range live {
		if o.state.Load() == opAbandoned && o.err == nil {
			o.err = errAbandoned
		}
		close(o.done)
	}
}

// errAbandoned is the result of an op whose caller gave up before the writer
// took it; the caller never reads it.
var errAbandoned = errors.New("store: abandoned by its caller")

// runTx runs ops and then inserts the audit entries in one transaction and
// sets the ops' results. On error nothing was committed, and every op's
// result is false. written reports whether the audit entries were committed.
func (db *DB) runTx(ops []*op, audit []AuditEntry) (written bool, err error) {
	defer func() {
		if err != nil {
			for _, o := range ops {
				o.ok = false
			}
		}
	}()
	// Not a caller's context: the batch belongs to many callers. Background
	// also spares the driver a goroutine per statement to watch for
	// cancellation.
	ctx := context.Background()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: begin write: %w", err)
	}
	defer tx.Rollback()
	// The write lock is ours: take the ops whose callers still wait. An op
	// whose caller gave up is not run: the request was dropped, and using up
	// its code now would only turn the NAS's retry into a replay.
	ran := 0
	for _, o := range ops {
		if !o.state.CompareAndSwap(opQueued, opTaken) && o.state.Load() != opTaken {
			continue
		}
		ran++
		if o.ok, err = db.exec(ctx, tx, o); err != nil {
			return false, err
		}
	}
	written = insertAudit(ctx, tx, audit)
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: commit write: %w", err)
	}
	db.txs.Add(1)
	db.nops.Add(uint64(ran)) // abandoned ops were not run
	return written, nil
}

// exec runs one op in tx. Each is a single conditional statement (plus, for
// a success, the failure reset), so concurrent writers, even in other
// processes or on other nodes sharing a database, cannot both win.
func (db *DB) exec(ctx context.Context, tx *sql.Tx, o *op) (bool, error) {
	switch o.kind {
	case opCommitSuccess:
		o.locked = false
		if o.request == nil {
			o.request = []byte{} // the column is NOT NULL
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE tokens SET last_step = ?, drift = ?, last_request = ?, last_accept_at = ?
				WHERE id = ? AND user_id = ? AND last_step < ?
				AND NOT EXISTS (SELECT 1 FROM users WHERE id = ? AND locked_until > ?)`,
			o.step, o.drift, o.request, o.now, o.tokenID, o.userID, o.step, o.userID, o.now)
		if err != nil {
			return false, fmt.Errorf("store: commit success of token %d: %w", o.tokenID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("store: commit success of token %d: %w", o.tokenID, err)
		}
		if n != 1 {
			// Why not: a replay, or a lockout that won the race?
			err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ? AND locked_until > ?)`,
				o.userID, o.now).Scan(&o.locked)
			if err != nil {
				return false, fmt.Errorf("store: commit success of token %d: %w", o.tokenID, err)
			}
			return false, nil
		}
		if err := resetFailures(ctx, tx, o.userID); err != nil {
			return false, err
		}
		return true, nil

	case opResetFailures:
		return false, resetFailures(ctx, tx, o.userID)

	case opTouch:
		// A real write (SQLite rewrites the row), so that it fails when the
		// disk or the lock does.
		if _, err := tx.ExecContext(ctx, `UPDATE users SET failures = failures WHERE id = ?`, o.userID); err != nil {
			return false, fmt.Errorf("store: touch user id %d: %w", o.userID, err)
		}
		return false, nil

	case opRecordFailure:
		// SET expressions all see the old row, so both CASEs agree. After a
		// locking failure the count is 0; otherwise it is at least 1.
		var failures int64
		err := tx.QueryRowContext(ctx, `UPDATE users SET
				failures     = CASE WHEN failures + 1 >= ? THEN 0 ELSE failures + 1 END,
				locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END
			WHERE id = ?
			RETURNING failures`,
			o.max, o.max, o.until, o.userID).Scan(&failures)
		if errors.Is(err, sql.ErrNoRows) {
			return false, &kindError{fmt.Sprintf("store: record failure: user id %d not found", o.userID), ErrNotFound}
		}
		if err != nil {
			return false, fmt.Errorf("store: record failure of user id %d: %w", o.userID, err)
		}
		return failures == 0, nil
	}
	return false, fmt.Errorf("store: unknown op %d", o.kind)
}

func resetFailures(ctx context.Context, tx *sql.Tx, userID int64) error {
	// "failures <> 0" skips writing a row that is already right.
	if _, err := tx.ExecContext(ctx, `UPDATE users SET failures = 0 WHERE id = ? AND failures <> 0`, userID); err != nil {
		return fmt.Errorf("store: reset failures of user id %d: %w", userID, err)
	}
	return nil
}
