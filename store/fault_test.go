package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A full database (max_page_count reached, as on a full disk): what needs
// new pages fails with an error that says so; the hot path, which updates
// rows in place, goes on, and no write is half done.
func TestDatabaseFull(t *testing.T) {
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
	var pages int
	if err := db.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The writer pool has one connection: the limit holds for every write.
	if _, err := db.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	var full error
	for i := range 10000 {
		if _, err := db.CreateUser(ctx, User{Name: fmt.Sprintf("user%05d-%s", i, strings.Repeat("x", 200))}); err != nil {
			full = err
			break
		}
	}
	if full == nil || !strings.Contains(full.Error(), "full") || errors.Is(full, ErrExists) {
		t.Fatalf("filling the database: %v; want a 'database or disk is full' error", full)
	}
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 100, 0); !ok || err != nil {
		t.Fatalf("replay-state commit on a full database: %v %v", ok, err)
	}
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 100, 0); ok || err != nil {
		t.Fatalf("replay on a full database: %v %v; want false", ok, err)
	}
	if _, err := db.RecordFailure(ctx, u.ID, 10, 0); err != nil {
		t.Fatalf("failure count on a full database: %v", err)
	}
}
