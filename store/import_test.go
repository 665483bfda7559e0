package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"
)

// importSeq yields users as Import wants them.
func importSeq(users []ImportUser) iter.Seq2[ImportUser, error] {
	return func(yield func(ImportUser, error) bool) {
		for _, u := range users {
			if !yield(u, nil) {
				return
			}
		}
	}
}

func importUser(name string, key []byte) ImportUser {
	u := ImportUser{User: User{Name: name, Email: name + "@example.org", PasswordHash: "$2b$04$abcdefghijklmnopqrstuu5Qq0y3Gq0J0f2l6l1p6g0pQbP0Y3m2e"}}
	if key != nil {
		u.Token = &Token{Secret: key, Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive, ActiveAt: time.UnixMilli(1_700_000_000_000)}
	}
	return u
}

func userNames(t *testing.T, db *DB) []string {
	t.Helper()
	us, err := db.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	return names
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	// Ids must stay above those of deleted rows (AUTOINCREMENT): a sealed
	// secret is bound to its token id.
	mustCreateUser(t, db, "gone")
	old := mustAddToken(t, db, "gone")
	if err := db.DeleteUser(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	var users []ImportUser
	for i := range 25 {
		key := bytes.Repeat([]byte{byte(i + 1)}, 20)
		if i%5 == 4 {
			key = nil // a user without a token
		}
		users = append(users, importUser(fmt.Sprintf("user%02d", i), key))
	}
	users[3].User.Policy = "optional"
	var progress []int
	n, err := db.Import(ctx, importSeq(users), ImportOptions{BatchSize: 10, Progress: func(k int) { progress = append(progress, k) }})
	if err != nil {
		t.Fatal(err)
	}
	if n != 25 || !slices.Equal(progress, []int{10, 20, 25}) {
		t.Fatalf("imported %d, progress %v; want 25, [10 20 25]", n, progress)
	}
	for i, want := range users {
		got, err := db.UserAuth(ctx, want.User.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != want.User.Email || got.PasswordHash != want.User.PasswordHash || got.Policy != want.User.Policy || got.CreatedAt.IsZero() {
			t.Errorf("user %d: got %+v", i, got)
		}
		if want.Token == nil {
			if len(got.Tokens) != 0 {
				t.Errorf("user %d: %d tokens, want none", i, len(got.Tokens))
			}
			continue
		}
		if len(got.Tokens) != 1 {
			t.Fatalf("user %d: %d tokens, want 1", i, len(got.Tokens))
		}
		tk := got.Tokens[0]
		if !bytes.Equal(tk.Secret, want.Token.Secret) || tk.Algorithm != "SHA1" || tk.Digits != 6 || tk.Period != 30 ||
			tk.State != TokenActive || !tk.ActiveAt.Equal(want.Token.ActiveAt) || tk.ID <= old.ID {
			t.Errorf("user %d: token %+v (deleted token had id %d)", i, tk, old.ID)
		}
	}
	// The ordinary paths go on from the imported ids.
	mustCreateUser(t, db, "later")
	if tk := mustAddToken(t, db, "later"); tk.ID <= old.ID+20 {
		t.Errorf("token after the import has id %d", tk.ID)
	}
}

func TestImport_AllOrNothing(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("read error")
	for _, tc := range []struct {
		name      string
		users     func(db *DB) iter.Seq2[ImportUser, error]
		wantIndex int // -1: not an ImportError
		wantErr   error
	}{
		{"NameTaken", func(db *DB) iter.Seq2[ImportUser, error] {
			mustCreateUser(t, db, "taken")
			var us []ImportUser
			for i := range 7 {
				us = append(us, importUser(fmt.Sprintf("u%d", i), make([]byte, 20)))
			}
			us[5].User.Name = "taken" // in the third batch
			return importSeq(us)
		}, 5, ErrExists},
		{"SameNameTwice", func(db *DB) iter.Seq2[ImportUser, error] {
			return importSeq([]ImportUser{importUser("a", nil), importUser("b", nil), importUser("c", nil), importUser("a", nil)})
		}, 3, ErrExists},
		{"BadToken", func(db *DB) iter.Seq2[ImportUser, error] {
			us := []ImportUser{importUser("a", make([]byte, 20)), importUser("b", make([]byte, 20)), importUser("c", make([]byte, 20))}
			us[2].Token.Digits = 7
			return importSeq(us)
		}, 2, nil},
		{"BadPolicy", func(db *DB) iter.Seq2[ImportUser, error] {
			us := []ImportUser{importUser("a", nil), importUser("b", nil), importUser("c", nil)}
			us[2].User.Policy = "sometimes"
			return importSeq(us)
		}, 2, nil},
		{"SourceFails", func(db *DB) iter.Seq2[ImportUser, error] {
			return func(yield func(ImportUser, error) bool) {
				for i := range 5 {
					if !yield(importUser(fmt.Sprintf("u%d", i), make([]byte, 20)), nil) {
						return
					}
				}
				yield(ImportUser{}, boom)
			}
		}, -1, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpen(t)
			seq := tc.users(db)
			before := userNames(t, db)
			n, err := db.Import(ctx, seq, ImportOptions{BatchSize: 2})
			if err == nil || n != 0 {
				t.Fatalf("Import = %d, %v; want an error", n, err)
			}
			ie, isImport := errors.AsType[*ImportError](err)
			if tc.wantIndex >= 0 && (!isImport || ie.Index != tc.wantIndex) {
				t.Errorf("error %v (%T); want an *ImportError for index %d", err, err, tc.wantIndex)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v; want it to match %v", err, tc.wantErr)
			}
			if after := userNames(t, db); !slices.Equal(after, before) {
				t.Errorf("users after a failed import: %v; want %v", after, before)
			}
			var tokens int
			if err := db.r.QueryRow(`SELECT COUNT(*) FROM tokens`).Scan(&tokens); err != nil || tokens != 0 {
				t.Errorf("%d tokens left (%v)", tokens, err)
			}
		})
	}
}

func TestImport_Cancelled(t *testing.T) {
	db := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	seq := func(yield func(ImportUser, error) bool) {
		for i := range 10 {
			if i == 5 {
				cancel()
			}
			if !yield(importUser(fmt.Sprintf("u%d", i), nil), nil) {
				return
			}
		}
	}
	if _, err := db.Import(ctx, seq, ImportOptions{BatchSize: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
	if names := userNames(t, db); len(names) != 0 {
		t.Errorf("users left: %v", names)
	}
}

func TestExistingNames(t *testing.T) {
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "carol")
	var names []string
	for i := range 1200 { // more than one query's worth
		names = append(names, fmt.Sprintf("n%d", i))
	}
	names = append(names, "carol", "bob", "alice")
	got, err := db.ExistingNames(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"alice", "carol"}) {
		t.Errorf("ExistingNames = %v", got)
	}
}

// BenchmarkImport reports the cost of importing one user with a token.
func BenchmarkImport(b *testing.B) {
	db := mustOpen(b)
	key := make([]byte, 20)
	i := 0
	b.ReportAllocs()
	seq := func(yield func(ImportUser, error) bool) {
		for range b.N {
			i++
			if !yield(importUser(fmt.Sprintf("user%09d", i), key), nil) {
				return
			}
		}
	}
	b.ResetTimer()
	if _, err := db.Import(context.Background(), seq, ImportOptions{}); err != nil {
		b.Fatal(err)
	}
}
