package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/radotp/radotp/store"
)

// TestClearAudit: a bench database keeps its users and tokens but starts
// every run without the audit trail of the runs before.
func TestClearAudit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := store.Options{Path: filepath.Join(dir, "radotp.db"), KeyFile: filepath.Join(dir, "radotp.key")}
	db, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, store.User{Name: "u0001"}); err != nil {
		t.Fatal(err)
	}
	for range 25 {
		db.Audit(store.AuditEntry{Time: time.Now(), User: "u0001", Client: "bench-otp", Result: "accept"})
	}
	if err := db.Close(); err != nil { // writes the queued entries
		t.Fatal(err)
	}

	db, err = store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := db.QueryAudit(ctx, store.AuditQuery{}); err != nil || len(es) != 25 {
		t.Fatalf("%d audit entries before clearing, %v; want 25", len(es), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	if err := (&bench{}).clearAudit(dir); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if es, err := db.QueryAudit(ctx, store.AuditQuery{}); err != nil || len(es) != 0 {
		t.Errorf("%d audit entries left, %v; want none", len(es), err)
	}
	if _, err := db.UserAuth(ctx, "u0001"); err != nil {
		t.Errorf("the user is gone: %v", err)
	}
}
