package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCommitSuccess_Replay(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	if _, err := db.RecordFailure(ctx, u.ID, 10, time.Minute); err != nil {
		t.Fatal(err)
	}

	// 50 requests with the same code: exactly one may win.
	const n = 50
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 1000, -1)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				wins.Add(1)
			} else {
				losses.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || losses.Load() != n-1 {
		t.Fatalf("%d wins and %d replays, want 1 and %d", wins.Load(), losses.Load(), n-1)
	}

	got, err := db.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens[0].LastStep != 1000 || got.Tokens[0].Drift != -1 {
		t.Errorf("last step %d, drift %d; want 1000, -1", got.Tokens[0].LastStep, got.Tokens[0].Drift)
	}
	if got.Failures != 0 {
		t.Errorf("success left failures at %d", got.Failures)
	}

	for _, c := range []struct {
		step int64
		want bool
	}{{999, false}, {1000, false}, {1001, true}, {1001, false}} {
		ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, c.step, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ok != c.want {
			t.Errorf("CommitSuccess(step %d) = %v, want %v", c.step, ok, c.want)
		}
	}
}

func TestCommitSuccess_OtherUsersToken(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	bob := mustCreateUser(t, db, "bob")
	tok := mustAddToken(t, db, "alice")
	if _, err := db.RecordFailure(ctx, bob.ID, 10, time.Minute); err != nil {
		t.Fatal(err)
	}

	ok, err := db.CommitSuccess(ctx, bob.ID, tok.ID, 5, 0)
	if err != nil || ok {
		t.Fatalf("CommitSuccess with alice's token as bob = %v, %v; want false", ok, err)
	}
	a, _ := db.UserAuth(ctx, "alice")
	b, _ := db.GetUser(ctx, "bob")
	if a.Tokens[0].LastStep != 0 || b.Failures != 1 {
		t.Errorf("a refused success changed state: last step %d, bob's failures %d", a.Tokens[0].LastStep, b.Failures)
	}
}

func TestCommitSuccess_Durable(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 4242, 1); err != nil || !ok {
		t.Fatalf("CommitSuccess = %v, %v", ok, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpenOptions(t, opts)
	got, err := db.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens[0].LastStep != 4242 || got.Tokens[0].Drift != 1 {
		t.Errorf("after reopen: last step %d, drift %d", got.Tokens[0].LastStep, got.Tokens[0].Drift)
	}
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 4242, 0); err != nil || ok {
		t.Errorf("replay after reopen = %v, %v; want false", ok, err)
	}
}

func TestRecordFailure(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return now }
	db := mustOpenOptions(t, opts)
	u := mustCreateUser(t, db, "alice")

	state := func() (int, time.Time) {
		t.Helper()
		got, err := db.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return got.Failures, got.LockedUntil
	}
	for i, want := range []bool{false, false, true} {
		locked, err := db.RecordFailure(ctx, u.ID, 3, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if locked != want {
			t.Errorf("failure %d: locked = %v, want %v", i+1, locked, want)
		}
		if f, until := state(); !want && (f != i+1 || !until.IsZero()) {
			t.Errorf("failure %d: failures %d, locked until %v", i+1, f, until)
		}
	}
	f, until := state()
	if f != 0 {
		t.Errorf("count after lock = %d, want 0", f)
	}
	if want := now.Add(15 * time.Minute); !until.Equal(want) {
		t.Errorf("locked until %v, want %v (the injected clock)", until, want)
	}

	// The count restarts; the next lock moves locked_until on.
	now = now.Add(time.Hour)
	if locked, err := db.RecordFailure(ctx, u.ID, 3, 15*time.Minute); err != nil || locked {
		t.Fatalf("first failure after lock = %v, %v", locked, err)
	}
	if f, until2 := state(); f != 1 || !until2.Equal(until) {
		t.Errorf("failures %d, locked until %v; want 1, %v", f, until2, until)
	}

	if err := db.ResetFailures(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if f, _ := state(); f != 0 {
		t.Errorf("after ResetFailures: %d", f)
	}

	t.Run("NoLimit", func(t *testing.T) {
		for range 5 {
			if locked, err := db.RecordFailure(ctx, u.ID, 0, time.Minute); err != nil || locked {
				t.Fatalf("RecordFailure(max 0) = %v, %v; want no lock", locked, err)
			}
		}
		if f, _ := state(); f != 5 {
			t.Errorf("failures %d, want 5", f)
		}
	})
	t.Run("UnknownUser", func(t *testing.T) {
		if _, err := db.RecordFailure(ctx, u.ID+1000, 3, time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

// TestGroupCommit has 200 logins commit at once: they must share far fewer
// than 200 transactions.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	const n = 200
	toks := make([]Token, n)
	for i := range toks {
		toks[i] = mustAddToken(t, db, "alice")
	}

	// Another connection holds the write lock while the 200 ops arrive, as a
	// slow fsync would: they wait in the queue together, whatever the
	// scheduler does, and must then go to disk in a few transactions.
	other, err := sql.Open("sqlite3", "file:"+db.path+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	hold, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	before := db.Stats()
	var wg sync.WaitGroup
	var started atomic.Int32
	for i := range n {
		wg.Go(func() {
			started.Add(1)
			ok, err := db.CommitSuccess(ctx, u.ID, toks[i].ID, 77, 0)
			if err != nil || !ok {
				t.Errorf("CommitSuccess(token %d) = %v, %v", toks[i].ID, ok, err)
			}
		})
	}
	for deadline := time.Now().Add(5 * time.Second); started.Load() < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // from started to queued
	hold.Rollback()
	wg.Wait()
	after := db.Stats()

	txs, ops := after.Transactions-before.Transactions, after.Ops-before.Ops
	t.Logf("%d ops in %d transactions", ops, txs)
	if ops != n {
		t.Errorf("%d ops committed, want %d", ops, n)
	}
	if txs == 0 || txs > n/4 {
		t.Errorf("%d transactions for %d concurrent ops; group commit is not batching", txs, n)
	}
}

// TestGroupCommit_Fallback puts a failing op in a batch with good ones: the
// good ones must still commit, and only the bad one fail.
func TestGroupCommit_Fallback(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	t1 := mustAddToken(t, db, "alice")
	t2 := mustAddToken(t, db, "alice")

	batch := []*op{
		{ctx: ctx, kind: opCommitSuccess, userID: u.ID, tokenID: t1.ID, step: 10},
		{ctx: ctx, kind: opRecordFailure, userID: u.ID + 1000, max: 3}, // no such user
		{ctx: ctx, kind: opCommitSuccess, userID: u.ID, tokenID: t2.ID, step: 10},
	}
	for _, o := range batch {
		o.done = make(chan struct{})
	}
	before := db.Stats()
	db.commit(batch, nil) // as the writer would, with these three queued
	after := db.Stats()

	for i, o := range batch {
		<-o.done
		if i == 1 {
			if !errors.Is(o.err, ErrNotFound) {
				t.Errorf("bad op: err = %v, want ErrNotFound", o.err)
			}
			continue
		}
		if o.err != nil || !o.ok {
			t.Errorf("op %d: %v, %v; want committed", i, o.ok, o.err)
		}
	}
	if after.Fallbacks != before.Fallbacks+1 || after.Transactions != before.Transactions+2 {
		t.Errorf("stats %+v -> %+v; want one fallback and two transactions", before, after)
	}
	got, _ := db.UserAuth(ctx, "alice")
	if got.Tokens[0].LastStep != 10 || got.Tokens[1].LastStep != 10 {
		t.Error("the good ops were not committed")
	}
}

// TestGroupCommit_Audit: audit entries ride in the batch's transaction (no
// fsync of their own), and a failing op in the batch does not lose them.
func TestGroupCommit_Audit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	entry := func(reason string) AuditEntry {
		return AuditEntry{Time: time.UnixMilli(1_800_000_000_000), User: "alice", Client: "vpn", Result: "accept", Reason: reason}
	}
	run := func(batch []*op, audit []AuditEntry) {
		for _, o := range batch {
			o.ctx, o.done = ctx, make(chan struct{})
		}
		db.commit(batch, audit)
		for _, o := range batch {
			<-o.done
		}
	}

	before := db.Stats()
	w0, d0 := db.AuditStats()
	good := &op{kind: opCommitSuccess, userID: u.ID, tokenID: tok.ID, step: 10}
	run([]*op{good}, []AuditEntry{entry("a1"), entry("a2"), entry("a3")})
	after := db.Stats()
	w1, d1 := db.AuditStats()
	if !good.ok || good.err != nil {
		t.Fatalf("op: %v, %v; want committed", good.ok, good.err)
	}
	if after.Transactions != before.Transactions+1 || w1-w0 != 3 || d1 != d0 {
		t.Errorf("one op and 3 entries: %d transactions, %d written, %d dropped; want 1, 3, 0",
			after.Transactions-before.Transactions, w1-w0, d1-d0)
	}

	good = &op{kind: opCommitSuccess, userID: u.ID, tokenID: tok.ID, step: 11}
	bad := &op{kind: opRecordFailure, userID: u.ID + 1000, max: 3} // no such user
	run([]*op{good, bad}, []AuditEntry{entry("b1"), entry("b2")})
	w2, d2 := db.AuditStats()
	if !good.ok || good.err != nil || !errors.Is(bad.err, ErrNotFound) {
		t.Fatalf("good op %v, %v; bad op %v", good.ok, good.err, bad.err)
	}
	if w2-w1 != 2 || d2 != d1 {
		t.Errorf("a failing op in the batch: %d entries written, %d dropped; want 2, 0", w2-w1, d2-d1)
	}
	got, err := db.QueryAudit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range got {
		reasons = append(reasons, e.Reason)
	}
	if strings.Join(reasons, ",") != "a1,a2,a3,b1,b2" {
		t.Errorf("audit rows %v; want a1,a2,a3,b1,b2", reasons)
	}
}

// TestGroupCommit_AuditAbortsTx: an audit entry whose insert aborts the
// whole transaction (here a trigger's RAISE(ROLLBACK); in life a full disk)
// does not cost the one login in the batch its commit.
func TestGroupCommit_AuditAbortsTx(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	if _, err := db.w.ExecContext(ctx, `CREATE TEMP TRIGGER audit_abort BEFORE INSERT ON audit
		WHEN NEW.reason = 'abort' BEGIN SELECT RAISE(ROLLBACK, 'audit says no'); END`); err != nil {
		t.Fatal(err)
	}
	_, d0 := db.AuditStats()
	o := &op{ctx: ctx, kind: opCommitSuccess, userID: u.ID, tokenID: tok.ID, step: 10, done: make(chan struct{})}
	db.commit([]*op{o}, []AuditEntry{{Time: time.UnixMilli(1_800_000_000_000), User: "alice", Result: "accept", Reason: "abort"}})
	<-o.done
	if !o.ok || o.err != nil {
		t.Fatalf("the login: %v, %v; want committed despite the audit entry", o.ok, o.err)
	}
	if _, d1 := db.AuditStats(); d1-d0 != 1 {
		t.Errorf("%d entries counted as dropped; want 1", d1-d0)
	}
	got, _ := db.UserAuth(ctx, "alice")
	if got.Tokens[0].LastStep != 10 {
		t.Errorf("last step %d; want 10", got.Tokens[0].LastStep)
	}
}

func TestCanceledContext(t *testing.T) {
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 { // the send and the cancellation race; try both ways
		ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 5, 0)
		if !errors.Is(err, context.Canceled) || ok {
			t.Fatalf("CommitSuccess with a canceled context = %v, %v", ok, err)
		}
	}
	// The canceled ops did not use up the step.
	if ok, err := db.CommitSuccess(context.Background(), u.ID, tok.ID, 5, 0); err != nil || !ok {
		t.Errorf("CommitSuccess after canceled attempts = %v, %v; want true", ok, err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 1, 0); err == nil || ok {
		t.Errorf("CommitSuccess after Close = %v, %v; want an error", ok, err)
	}
	if err := db.ResetFailures(ctx, u.ID); err == nil {
		t.Error("ResetFailures after Close succeeded")
	}
	if _, err := db.RecordFailure(ctx, u.ID, 3, time.Minute); err == nil {
		t.Error("RecordFailure after Close succeeded")
	}
	if _, err := db.UserAuth(ctx, "alice"); err == nil {
		t.Error("UserAuth after Close succeeded")
	}
}

// TestCloseWhileWriting closes the database under load: every op that
// reported success must be on disk, and every other one must not be.
func TestCloseWhileWriting(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreateUser(t, db, "alice")
	const n = 300
	toks := make([]Token, n)
	for i := range toks {
		toks[i] = mustAddToken(t, db, "alice")
	}

	committed := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ok, err := db.CommitSuccess(ctx, u.ID, toks[i].ID, 9, 0)
			if err == nil && !ok {
				t.Errorf("token %d: replay reported for a first use", toks[i].ID)
			}
			committed[i] = ok
		})
		if i == n/2 {
			go db.Close()
		}
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpenOptions(t, opts)
	got, err := db.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var yes int
	for i, tk := range got.Tokens {
		if onDisk := tk.LastStep == 9; onDisk != committed[i] {
			t.Errorf("token %d: reported %v, on disk %v", tk.ID, committed[i], onDisk)
		}
		if committed[i] {
			yes++
		}
	}
	t.Logf("%d of %d committed before Close", yes, n)
}

func BenchmarkCommitSuccessParallel(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b)
	u := mustCreateUser(b, db, "alice")
	const parallelism = 16 // goroutines per GOMAXPROCS: logins in flight
	b.SetParallelism(parallelism)
	toks := make([]Token, parallelism*64)
	for i := range toks {
		toks[i] = mustAddToken(b, db, "alice")
	}
	var next atomic.Int64
	before := db.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine has its own token and a rising step, so every
		// commit succeeds and writes.
		tok := toks[next.Add(1)-1]
		for step := int64(1); pb.Next(); step++ {
			ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, step, 0)
			if err != nil || !ok {
				b.Errorf("CommitSuccess = %v, %v", ok, err)
				return
			}
		}
	})
	b.StopTimer()
	after := db.Stats()
	if txs := after.Transactions - before.Transactions; txs > 0 {
		b.ReportMetric(float64(after.Ops-before.Ops)/float64(txs), "ops/tx")
	}
}

// A caller that gives up while its op waits for the write lock either gets
// an error and nothing was written, or its op was taken and it gets the true
// result: never an error for a step that was committed.
func TestGiveUpIsConsistent(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if _, err := db.CreateUser(ctx, User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	tok, err := db.AddToken(ctx, "alice", Token{Secret: []byte("0123456789abcdef0123"), Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := db.GetUser(ctx, "alice")
	other, err := sql.Open("sqlite3", "file:"+db.path+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := range 5 {
		tx, err := other.Begin() // holds the write lock
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		step := int64(1000 + i)
		done := make(chan struct{})
		var ok bool
		var cerr error
		go func() { ok, cerr = db.CommitSuccess(cctx, u.ID, tok.ID, step, 0); close(done) }()
		time.Sleep(time.Duration(10*i) * time.Millisecond)
		tx.Rollback()
		<-done
		cancel()
		db.Close() // flush, then check what is on disk
		db = mustOpenOptions(t, Options{Path: db.path, KeyFile: db.keyFile})
		got, _ := db.UserAuth(ctx, "alice")
		committed := got.Tokens[0].LastStep == step
		if committed != ok || (cerr != nil && committed) {
			t.Fatalf("round %d: CommitSuccess = %v, %v but committed = %v", i, ok, cerr, committed)
		}
	}
}

// BenchmarkExecCommitSuccess: the statements a success costs the writer
// (the serial part of the group commit), without the commit: 64 logins of
// different users per transaction, rolled back.
func BenchmarkExecCommitSuccess(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b)
	const users = 2000
	ops := make([]*op, users)
	for i := range ops {
		name := fmt.Sprintf("u%05d", i)
		u := mustCreateUser(b, db, name)
		t := mustAddToken(b, db, name)
		ops[i] = &op{kind: opCommitSuccess, userID: u.ID, tokenID: t.ID, now: 1, request: []byte("0123456789abcdef")}
	}
	n, batches := 0, 0
	for b.Loop() { // the setup above runs once
		batches++
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range 64 {
			o := ops[n%users]
			n++
			o.step = int64(n)
			if ok, err := db.exec(ctx, tx, o); err != nil || !ok {
				b.Fatalf("exec: %v, %v", ok, err)
			}
		}
		tx.Rollback()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batches*64), "ns/login")
}
