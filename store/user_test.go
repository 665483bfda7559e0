package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	opts.Now = func() time.Time { return now }
	db := mustOpenOptions(t, opts)

	u, err := db.CreateUser(ctx, User{Name: "alice", Email: "a@example.org", PasswordHash: "$argon2id$x", Policy: "optional",
		Failures: 7, LockedUntil: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 {
		t.Error("no ID")
	}
	if want := now.Truncate(time.Millisecond); !u.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", u.CreatedAt, want)
	}
	if u.Failures != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("new user starts with failures %d, locked until %v", u.Failures, u.LockedUntil)
	}

	got, err := db.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Name != "alice" || got.Email != "a@example.org" || got.PasswordHash != "$argon2id$x" ||
		got.Policy != "optional" || got.Failures != 0 || !got.LockedUntil.IsZero() || !got.CreatedAt.Equal(u.CreatedAt) ||
		len(got.Tokens) != 0 {
		t.Errorf("GetUser = %+v, want %+v", got, u)
	}

	t.Run("ErrExists", func(t *testing.T) {
		_, err := db.CreateUser(ctx, User{Name: "alice"})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
		if err.Error() != `store: user "alice" already exists` {
			t.Errorf("message %q", err)
		}
	})
	t.Run("EmptyName", func(t *testing.T) {
		if _, err := db.CreateUser(ctx, User{}); err == nil {
			t.Error("created a user without a name")
		}
	})
	t.Run("BadPolicy", func(t *testing.T) {
		if _, err := db.CreateUser(ctx, User{Name: "bob", Policy: "sometimes"}); err == nil {
			t.Error("created a user with an unknown policy")
		}
	})
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice") // not the one asked for
	for name, f := range map[string]func() error{
		"GetUser":     func() error { _, err := db.GetUser(ctx, "bob"); return err },
		"UserAuth":    func() error { _, err := db.UserAuth(ctx, "bob"); return err },
		"SetPassword": func() error { return db.SetPassword(ctx, "bob", "h") },
		"SetPolicy":   func() error { return db.SetPolicy(ctx, "bob", "required") },
		"DeleteUser":  func() error { return db.DeleteUser(ctx, "bob") },
		"UnlockUser":  func() error { return db.UnlockUser(ctx, "bob") },
		"AddToken": func() error {
			_, err := db.AddToken(ctx, "bob", Token{Secret: []byte("x"), Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive})
			return err
		},
		"DeleteTokens": func() error { _, err := db.DeleteTokens(ctx, "bob"); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := f()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if err.Error() != `store: user "bob" not found` {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestListUsers(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	if users, err := db.ListUsers(ctx); err != nil || len(users) != 0 {
		t.Fatalf("empty database: %v, %v", users, err)
	}
	for _, name := range []string{"carol", "alice", "bob"} {
		mustCreateUser(t, db, name)
	}
	b1 := mustAddToken(t, db, "bob")
	mustAddToken(t, db, "carol")
	b2 := mustAddToken(t, db, "bob")

	users, err := db.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		for _, tok := range u.Tokens {
			if tok.Secret != nil {
				t.Errorf("ListUsers returned the secret of token %d", tok.ID)
			}
			if tok.UserID != u.ID {
				t.Errorf("token %d of user %d listed under user %d", tok.ID, tok.UserID, u.ID)
			}
		}
	}
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Errorf("users %v, want by name", names)
	}
	if n := [3]int{len(users[0].Tokens), len(users[1].Tokens), len(users[2].Tokens)}; n != [3]int{0, 2, 1} {
		t.Fatalf("token counts %v", n)
	}
	if users[1].Tokens[0].ID != b1.ID || users[1].Tokens[1].ID != b2.ID {
		t.Error("bob's tokens are not oldest first")
	}
}

func TestSetPasswordAndPolicy(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	if err := db.SetPassword(ctx, "alice", "$2b$10$abc"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPolicy(ctx, "alice", "disabled"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPolicy(ctx, "alice", "never"); err == nil {
		t.Error("SetPolicy accepted an unknown policy")
	}
	u, err := db.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "$2b$10$abc" || u.Policy != "disabled" {
		t.Errorf("hash %q, policy %q", u.PasswordHash, u.Policy)
	}
}

func TestDeleteUser(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "bob")
	mustAddToken(t, db, "alice")
	mustAddToken(t, db, "alice")
	keep := mustAddToken(t, db, "bob")

	if err := db.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetUser(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser after delete: %v", err)
	}
	var ids []int64
	rows, err := db.r.Query(`SELECT id FROM tokens`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 1 || ids[0] != keep.ID {
		t.Errorf("tokens left %v, want only bob's %d (cascade)", ids, keep.ID)
	}
	if err := db.DeleteUser(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestUnlockUser(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	u := mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "bob")
	if locked, err := db.RecordFailure(ctx, u.ID, 1, time.Hour); err != nil || !locked {
		t.Fatalf("RecordFailure = %v, %v", locked, err)
	}
	if _, err := db.RecordFailure(ctx, u.ID, 5, time.Hour); err != nil {
		t.Fatal(err)
	}
	before, _ := db.GetUser(ctx, "alice")
	if before.Failures != 1 || before.LockedUntil.IsZero() {
		t.Fatalf("before unlock: failures %d, locked until %v", before.Failures, before.LockedUntil)
	}
	if err := db.UnlockUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	after, _ := db.GetUser(ctx, "alice")
	if after.Failures != 0 || !after.LockedUntil.IsZero() {
		t.Errorf("after unlock: failures %d, locked until %v", after.Failures, after.LockedUntil)
	}
}

func TestAddToken(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return now }
	db := mustOpenOptions(t, opts)
	u := mustCreateUser(t, db, "alice")

	in := Token{
		Secret: randomBytes(32), Algorithm: "SHA256", Digits: 8, Period: 60, State: TokenActive,
		ActiveAt: now.Add(15 * time.Minute),
	}
	tok, err := db.AddToken(ctx, "alice", in)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID == 0 || tok.UserID != u.ID || !tok.CreatedAt.Equal(now) {
		t.Errorf("AddToken returned ID %d, UserID %d, CreatedAt %v", tok.ID, tok.UserID, tok.CreatedAt)
	}
	second := mustAddToken(t, db, "alice")

	got, err := db.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tokens) != 2 || got.Tokens[0].ID != tok.ID || got.Tokens[1].ID != second.ID {
		t.Fatalf("UserAuth tokens %+v, want %d then %d", got.Tokens, tok.ID, second.ID)
	}
	g := got.Tokens[0]
	if !bytes.Equal(g.Secret, in.Secret) {
		t.Error("secret does not round-trip")
	}
	if g.Algorithm != "SHA256" || g.Digits != 8 || g.Period != 60 || g.State != TokenActive ||
		!g.ActiveAt.Equal(in.ActiveAt) || !g.CreatedAt.Equal(now) || g.LastStep != 0 || g.Drift != 0 {
		t.Errorf("UserAuth token = %+v", g)
	}
	if !bytes.Equal(got.Tokens[1].Secret, second.Secret) {
		t.Error("second secret does not round-trip")
	}

	admin, err := db.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(admin.Tokens) != 2 || admin.Tokens[0].Secret != nil || admin.Tokens[1].Secret != nil {
		t.Error("GetUser returned secrets")
	}

	for name, bad := range map[string]Token{
		"NoSecret":  {Algorithm: "SHA1", Digits: 6, Period: 30, State: TokenActive},
		"Algorithm": {Secret: []byte("k"), Algorithm: "MD5", Digits: 6, Period: 30, State: TokenActive},
		"Digits":    {Secret: []byte("k"), Algorithm: "SHA1", Digits: 7, Period: 30, State: TokenActive},
		"Period":    {Secret: []byte("k"), Algorithm: "SHA1", Digits: 6, Period: 0, State: TokenActive},
		"State":     {Secret: []byte("k"), Algorithm: "SHA1", Digits: 6, Period: 30, State: "revoked"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := db.AddToken(ctx, "alice", bad); err == nil || !strings.HasPrefix(err.Error(), "store: add token") {
				t.Errorf("err = %v, want a store: add token error", err)
			}
		})
	}
}

func TestDeleteTokens(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "bob")
	mustAddToken(t, db, "alice")
	mustAddToken(t, db, "alice")
	mustAddToken(t, db, "bob")

	if n, err := db.DeleteTokens(ctx, "alice"); err != nil || n != 2 {
		t.Fatalf("DeleteTokens = %d, %v; want 2", n, err)
	}
	if n, err := db.DeleteTokens(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("second DeleteTokens = %d, %v; want 0", n, err)
	}
	bob, err := db.GetUser(ctx, "bob")
	if err != nil || len(bob.Tokens) != 1 {
		t.Errorf("bob has %d tokens (%v), want 1", len(bob.Tokens), err)
	}
}

func TestTokenCounts(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tok := range []Token{
		{State: TokenPending},
		{State: TokenPending},
		{State: TokenActive, ActiveAt: now.Add(time.Minute)}, // activating
		{State: TokenActive, ActiveAt: now},                  // active from now on
		{State: TokenActive, ActiveAt: now.Add(-time.Hour)},
		{State: TokenActive}, // zero ActiveAt: active since always
	} {
		tok.Secret, tok.Algorithm, tok.Digits, tok.Period = []byte("k"), "SHA1", 6, 30
		if _, err := db.AddToken(ctx, "alice", tok); err != nil {
			t.Fatal(err)
		}
	}
	p, ing, a, err := db.TokenCounts(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if p != 2 || ing != 1 || a != 3 {
		t.Errorf("TokenCounts = %d pending, %d activating, %d active; want 2, 1, 3", p, ing, a)
	}
}

// A caller that has given up gets an error, not a read.
func TestUserAuthCanceled(t *testing.T) {
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.UserAuth(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Fatalf("UserAuth with a canceled context: %v; want context.Canceled", err)
	}
}
