package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestAuditRoundTrip(t *testing.T) {
	dir := t.TempDir()
	base := time.UnixMilli(1_800_000_000_000)
	opts := Options{Path: filepath.Join(dir, "a.db"), KeyFile: filepath.Join(dir, "a.key")}
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		db.Audit(AuditEntry{Time: base.Add(time.Duration(i) * time.Minute), User: user, Client: "vpn",
			CallingStation: "192.0.2.7", Source: "127.0.0.1:5000", Result: "reject", Reason: "bad_code", Duration: 1500 * time.Microsecond})
	}
	// Close flushes what is queued: nothing is lost on a clean stop.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db.Audit(AuditEntry{User: "late"}) // after Close: dropped, no panic
	if db, err = Open(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	all, err := db.QueryAudit(ctx, AuditQuery{})
	if err != nil || len(all) != 50 {
		t.Fatalf("%d entries, %v; want 50", len(all), err)
	}
	e := all[0]
	if !e.Time.Equal(base) || e.User != "alice" || e.Client != "vpn" || e.CallingStation != "192.0.2.7" ||
		e.Source != "127.0.0.1:5000" || e.Result != "reject" || e.Reason != "bad_code" || e.Duration != 1500*time.Microsecond {
		t.Fatalf("first entry %+v", e)
	}
	bob, _ := db.QueryAudit(ctx, AuditQuery{User: "bob", Since: base.Add(40 * time.Minute)})
	if len(bob) != 5 || bob[0].User != "bob" || bob[0].Time.Before(base.Add(40*time.Minute)) {
		t.Fatalf("bob since +40m: %+v", bob)
	}
	last, _ := db.QueryAudit(ctx, AuditQuery{Limit: 3})
	if len(last) != 3 || !last[2].Time.Equal(base.Add(49*time.Minute)) || !last[0].Time.Before(last[1].Time) {
		t.Fatalf("limit keeps the newest, oldest first: %+v", last)
	}
	n, err := db.PruneAudit(ctx, base.Add(30*time.Minute))
	if err != nil || n != 30 {
		t.Fatalf("pruned %d, %v; want 30", n, err)
	}
	if rest, _ := db.QueryAudit(ctx, AuditQuery{}); len(rest) != 20 {
		t.Fatalf("%d left; want 20", len(rest))
	}
}

// Many writers at once: the hot path never blocks, and a batch is one
// transaction.
func TestAuditConcurrent(t *testing.T) {
	db := mustOpen(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				db.Audit(AuditEntry{Time: time.UnixMilli(int64(g*1000 + i)), User: "u", Client: "c", Result: "accept"})
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w, d := db.AuditStats()
		if w+d == 4000 {
			if d != 0 {
				t.Fatalf("%d of 4000 dropped with a queue of %d", d, auditQueue)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("written %d dropped %d of 4000", w, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// What the audit costs the hot path: queueing one entry.
func BenchmarkAuditEnqueue(b *testing.B) {
	db := mustOpen(b)
	e := AuditEntry{Time: time.Now(), User: "alice", Client: "vpn", CallingStation: "192.0.2.7", Source: "127.0.0.1:5000", Result: "accept"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			db.Audit(e)
		}
	})
}

// TestInsertAudit_Sizes writes batches of sizes around the multi-row
// INSERTs' row counts and reads every entry back, in order, field by field.
func TestInsertAudit_Sizes(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	base := time.UnixMilli(1_800_000_000_000)
	for _, n := range []int{1, 3, 4, 5, 16, 21, 63, 64, 65, 85, 150, auditBatch} {
		user := fmt.Sprintf("size-%d", n)
		entries := make([]AuditEntry, n)
		for i := range entries {
			entries[i] = AuditEntry{Time: base.Add(time.Duration(i) * time.Millisecond), User: user, Client: fmt.Sprintf("c%d", i),
				CallingStation: fmt.Sprintf("s%d", i), Source: fmt.Sprintf("127.0.0.1:%d", i), Result: "reject",
				Reason: fmt.Sprintf("r%d", i), Duration: time.Duration(i) * time.Microsecond}
		}
		w0, _ := db.AuditStats()
		db.commit(nil, slices.Clone(entries)) // commit clears what it is given
		if w1, _ := db.AuditStats(); w1-w0 != uint64(n) {
			t.Fatalf("%d entries: %d counted as written", n, w1-w0)
		}
		got, err := db.QueryAudit(ctx, AuditQuery{User: user, Limit: 2 * auditBatch})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d entries written, %d read back", n, len(got))
		}
		for i, e := range got {
			want := entries[i]
			if !e.Time.Equal(want.Time) || e.User != want.User || e.Client != want.Client || e.CallingStation != want.CallingStation ||
				e.Source != want.Source || e.Result != want.Result || e.Reason != want.Reason || e.Duration != want.Duration {
				t.Fatalf("batch of %d, entry %d: %+v, want %+v", n, i, e, want)
			}
		}
	}
}

// BenchmarkInsertAudit: the inserts of a batch of 64 entries, without the
// commit (rolled back), which would hide them behind an fsync.
func BenchmarkInsertAudit(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b)
	entries := make([]AuditEntry, 64)
	for i := range entries {
		entries[i] = AuditEntry{Time: time.Now(), User: fmt.Sprintf("u%07d", i), Client: "bench-otp", Source: "127.0.0.1:40000", Result: "accept", Duration: 900 * time.Microsecond}
	}
	b.ResetTimer()
	for range b.N {
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if !insertAudit(ctx, tx, entries) {
			b.Fatal("not written")
		}
		tx.Rollback()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
}
