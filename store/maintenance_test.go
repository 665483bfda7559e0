package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A backup taken while writes go on is a consistent, openable database with
// the same key, and holds what was committed before it started.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Path: filepath.Join(dir, "live.db"), KeyFile: filepath.Join(dir, "k")}
	db := mustOpenOptions(t, opts)
	ctx := context.Background()
	if _, err := db.CreateUser(ctx, User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	tok, err := db.AddToken(ctx, "alice", Token{Secret: []byte("0123456789abcdef0123"), Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := db.GetUser(ctx, "alice")
	if ok, err := db.CommitSuccess(ctx, u.ID, tok.ID, 1000, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // writes go on during the backup
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			db.CommitSuccess(ctx, u.ID, tok.ID, int64(2000+i), 0)
		}
	}()
	backup := filepath.Join(dir, "backup.db")
	err = db.Backup(ctx, backup)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	// The live database still takes writes (the read pool stayed read-only).
	if err := db.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	restored := mustOpenOptions(t, Options{Path: backup, KeyFile: opts.KeyFile})
	ru, err := restored.UserAuth(ctx, "alice")
	if err != nil || len(ru.Tokens) != 1 || string(ru.Tokens[0].Secret) != "0123456789abcdef0123" || ru.Tokens[0].LastStep < 1000 {
		t.Fatalf("restored: %+v %v", ru, err)
	}
	if _, err := Open(ctx, Options{Path: backup, KeyFile: filepath.Join(dir, "other.key")}); err == nil {
		t.Fatal("backup opened with another key")
	}
}
