package store

import (
	"context"
	"path/filepath"
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
