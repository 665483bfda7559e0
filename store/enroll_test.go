package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openWithClock(t *testing.T) (*DB, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	opts := testOptions(t)
	opts.Now = c.Now
	return mustOpenOptions(t, opts), c
}

func newLink(secret []byte, purpose string, expires time.Time) EnrollLink {
	return EnrollLink{Purpose: purpose, ExpiresAt: expires, Secret: secret, Algorithm: "SHA1", Digits: 6, Period: 30}
}

func mustCreateLink(t *testing.T, db *DB, user string, l EnrollLink) (EnrollLink, string) {
	t.Helper()
	got, tok, err := db.CreateEnrollLink(context.Background(), user, l, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return got, tok
}

func TestEnrollLink_CreateAndGet(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	if _, err := db.CreateUser(ctx, User{Name: "alice", Email: "alice@example.org"}); err != nil {
		t.Fatal(err)
	}
	secret := randomBytes(20)
	l, tok := mustCreateLink(t, db, "alice", newLink(secret, LinkAdmin, clk.Now().Add(time.Hour)))
	if !ValidLinkToken(tok) || len(tok) != 43 {
		t.Fatalf("token %q is not 43 base64url characters", tok)
	}
	if l.ID == 0 || l.UserName != "alice" || l.UserEmail != "alice@example.org" || !l.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("created link %+v", l)
	}

	got, err := db.EnrollLinkByToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Secret, secret) || got.ID != l.ID || got.UserName != "alice" || got.Purpose != LinkAdmin ||
		got.Digits != 6 || got.Period != 30 || got.Algorithm != "SHA1" || !got.Usable(clk.Now()) {
		t.Fatalf("EnrollLinkByToken = %+v", got)
	}
	if got.Usable(l.ExpiresAt) {
		t.Error("link usable at its expiry instant")
	}

	// Only the hash is stored: no column holds the token or the secret.
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM enroll_links WHERE token_hash = ? OR token_hash = ? OR instr(secret, ?) > 0`,
		tok, []byte(tok), secret).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the link token or the secret is stored in the clear")
	}

	// Tokens of other links and junk are not found.
	other, _ := newLinkToken()
	for _, bad := range []string{other, "", tok[:42], tok + "A"} {
		if _, err := db.EnrollLinkByToken(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("EnrollLinkByToken(%q): %v, want ErrNotFound", bad, err)
		}
	}
	for _, bad := range []string{"", tok[:42], tok + "A", tok[:42] + "=", tok[:42] + "+", "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaa"} {
		if ValidLinkToken(bad) {
			t.Errorf("ValidLinkToken(%q) = true", bad)
		}
	}

	// Bad input.
	if _, _, err := db.CreateEnrollLink(ctx, "nobody", newLink(secret, LinkAdmin, clk.Now().Add(time.Hour)), time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if _, _, err := db.CreateEnrollLink(ctx, "alice", newLink(secret, LinkAdmin, clk.Now()), time.Time{}); err == nil {
		t.Error("link that expires now was created")
	}
	if _, _, err := db.CreateEnrollLink(ctx, "alice", newLink(nil, LinkAdmin, clk.Now().Add(time.Hour)), time.Time{}); err == nil {
		t.Error("link without a secret was created")
	}
}

// TestEnrollLink_Sealed checks that the pending secret is sealed, bound to
// its link row: copied to another link it does not open.
func TestEnrollLink_Sealed(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	s1, s2 := randomBytes(20), randomBytes(20)
	_, tok1 := mustCreateLink(t, db, "alice", newLink(s1, LinkAdmin, clk.Now().Add(time.Hour)))
	l2, tok2 := mustCreateLink(t, db, "alice", newLink(s2, LinkAdmin, clk.Now().Add(time.Hour)))

	for _, name := range []string{db.path, db.path + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, s1) || bytes.Contains(b, s2) || bytes.Contains(b, []byte(tok1)) {
			t.Errorf("%s holds a pending secret or a link token in the clear", name)
		}
	}

	if _, err := db.w.Exec(`UPDATE enroll_links SET secret = (SELECT secret FROM enroll_links WHERE token_hash = ?) WHERE id = ?`,
		linkHash(tok1), l2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnrollLinkByToken(ctx, tok2); err == nil {
		t.Fatal("a pending secret moved to another link opened there")
	}
}

func TestEnrollLink_NotSince(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "bob")
	ttl := 24 * time.Hour
	mk := func(user, purpose string) error {
		_, _, err := db.CreateEnrollLink(ctx, user, newLink(randomBytes(20), purpose, clk.Now().Add(ttl)), clk.Now().Add(-ttl))
		return err
	}
	if err := mk("alice", LinkNeed); err != nil {
		t.Fatal(err)
	}
	if err := mk("alice", LinkNeed); !errors.Is(err, ErrLinkRecent) {
		t.Fatalf("second link within the TTL: %v, want ErrLinkRecent", err)
	}
	// Other purposes and other users are not held back.
	if err := mk("alice", LinkAdmin); err != nil {
		t.Fatal(err)
	}
	if err := mk("bob", LinkNeed); err != nil {
		t.Fatal(err)
	}
	clk.Add(ttl - time.Millisecond)
	if err := mk("alice", LinkNeed); !errors.Is(err, ErrLinkRecent) {
		t.Fatalf("just within the TTL: %v", err)
	}
	clk.Add(time.Millisecond)
	if err := mk("alice", LinkNeed); err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
}

func TestEnrollLink_BadCodesVoid(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	l, tok := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))
	for i := 1; i <= 3; i++ {
		n, voided, err := db.EnrollBadCode(ctx, l.ID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n != i || voided != (i == 3) {
			t.Fatalf("wrong code %d: attempts %d, voided %v", i, n, voided)
		}
	}
	if _, _, err := db.EnrollBadCode(ctx, l.ID, 3); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("wrong code on a void link: %v, want ErrLinkClosed", err)
	}
	got, err := db.EnrollLinkByToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.VoidedAt.IsZero() || got.VoidReason != VoidAttempts || got.Secret != nil || got.Usable(clk.Now()) || got.Attempts != 3 {
		t.Fatalf("void link: %+v", got)
	}
	if _, err := db.ConfirmEnrollLink(ctx, l.ID, clk.Now(), 1); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("confirm of a void link: %v", err)
	}
	var sealed []byte
	db.r.QueryRow(`SELECT secret FROM enroll_links WHERE id = ?`, l.ID).Scan(&sealed)
	if len(sealed) != 0 {
		t.Error("void link keeps its sealed secret")
	}
}

func TestEnrollLink_Confirm(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	old := mustAddToken(t, db, "alice")
	secret := randomBytes(20)
	l, tok := mustCreateLink(t, db, "alice", newLink(secret, LinkLogin, clk.Now().Add(time.Hour)))
	other, otherTok := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))

	activeAt := clk.Now().Add(15 * time.Minute)
	tk, err := db.ConfirmEnrollLink(ctx, l.ID, activeAt, 12345)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID == 0 || tk.State != TokenActive || !tk.ActiveAt.Equal(activeAt) || tk.LastStep != 12345 || tk.UserID != l.UserID {
		t.Fatalf("token %+v", tk)
	}
	u, err := db.UserAuth(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Tokens) != 2 || u.Tokens[0].ID != old.ID || !bytes.Equal(u.Tokens[1].Secret, secret) || u.Tokens[1].LastStep != 12345 {
		t.Fatalf("tokens after confirm: %+v", u.Tokens)
	}

	// Single use: a second confirmation fails, the link says it was used.
	if _, err := db.ConfirmEnrollLink(ctx, l.ID, activeAt, 12346); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("second confirm: %v, want ErrLinkClosed", err)
	}
	got, err := db.EnrollLinkByToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.UsedAt.IsZero() || got.TokenID != tk.ID || got.Secret != nil || got.Usable(clk.Now()) {
		t.Fatalf("used link: %+v", got)
	}
	// The user's other open link is voided as replaced.
	got, err = db.EnrollLinkByToken(ctx, otherTok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != other.ID || got.VoidReason != VoidReplaced || got.Usable(clk.Now()) {
		t.Fatalf("other link after confirm: %+v", got)
	}
}

func TestEnrollLink_ConfirmExpired(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	l, _ := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))
	clk.Add(time.Hour)
	if _, err := db.ConfirmEnrollLink(ctx, l.ID, clk.Now(), 1); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("confirm at expiry: %v, want ErrLinkClosed", err)
	}
}

func TestEnrollLink_ConfirmRace(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	l, _ := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, closed := 0, 0
	for range 8 {
		wg.Go(func() {
			_, err := db.ConfirmEnrollLink(ctx, l.ID, clk.Now(), 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrLinkClosed):
				closed++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || closed != 7 {
		t.Fatalf("%d confirmations succeeded, %d closed; want 1 and 7", ok, closed)
	}
}

func TestDeleteSuperseded(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	now := clk.Now()
	add := func(user string, activeAt time.Time) Token {
		t.Helper()
		tk, err := db.AddToken(ctx, user, Token{Secret: randomBytes(20), Algorithm: "SHA1", Digits: 6, Period: 30,
			State: TokenActive, ActiveAt: activeAt})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	ids := func(user string) []int64 {
		t.Helper()
		u, err := db.GetUser(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, tk := range u.Tokens {
			out = append(out, tk.ID)
		}
		return out
	}
	mustCreateUser(t, db, "alice")
	mustCreateUser(t, db, "bob")
	a1 := add("alice", now.Add(-time.Hour))
	a2 := add("alice", now.Add(15*time.Minute)) // activating: a1 keeps working
	b1 := add("bob", now.Add(-2*time.Hour))
	b2 := add("bob", now.Add(-time.Hour))

	n, err := db.DeleteSuperseded(ctx, mustID(t, db, "alice"), now)
	if err != nil || n != 0 {
		t.Fatalf("alice before activation: deleted %d, %v; want 0", n, err)
	}
	if got := ids("alice"); len(got) != 2 {
		t.Fatalf("alice tokens %v", got)
	}
	// Per user: bob's superseded token stays when only alice is pruned.
	if got := ids("bob"); len(got) != 2 || got[0] != b1.ID {
		t.Fatalf("bob tokens %v", got)
	}
	n, err = db.DeleteSuperseded(ctx, mustID(t, db, "alice"), now.Add(15*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("alice after activation: deleted %d, %v; want 1", n, err)
	}
	if got := ids("alice"); len(got) != 1 || got[0] != a2.ID {
		t.Fatalf("alice tokens %v, want [%d] (not %d)", got, a2.ID, a1.ID)
	}
	// All users.
	n, err = db.DeleteSuperseded(ctx, 0, now)
	if err != nil || n != 1 {
		t.Fatalf("all users: deleted %d, %v; want 1", n, err)
	}
	if got := ids("bob"); len(got) != 1 || got[0] != b2.ID {
		t.Fatalf("bob tokens %v", got)
	}
	// Same activation instant: the higher id wins, as in the verifier.
	mustCreateUser(t, db, "carol")
	c1 := add("carol", now.Add(-time.Minute))
	c2 := add("carol", c1.ActiveAt)
	if _, err := db.DeleteSuperseded(ctx, 0, now); err != nil {
		t.Fatal(err)
	}
	if got := ids("carol"); len(got) != 1 || got[0] != c2.ID {
		t.Fatalf("carol tokens %v, want [%d]", got, c2.ID)
	}
}

func mustID(t *testing.T, db *DB, name string) int64 {
	t.Helper()
	u, err := db.GetUser(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestPruneEnrollLinks(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	_, tok := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))
	_, tok2 := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(3*time.Hour)))

	clk.Add(2 * time.Hour)
	n, err := db.PruneEnrollLinks(ctx, clk.Now(), clk.Now().Add(-7*24*time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	l, err := db.EnrollLinkByToken(ctx, tok)
	if err != nil || l.Secret != nil {
		t.Fatalf("expired link after prune: %+v, %v (want kept, secret cleared)", l, err)
	}
	if l, err := db.EnrollLinkByToken(ctx, tok2); err != nil || l.Secret == nil {
		t.Fatalf("open link after prune: %+v, %v", l, err)
	}
	clk.Add(8 * 24 * time.Hour)
	n, err = db.PruneEnrollLinks(ctx, clk.Now(), clk.Now().Add(-7*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("prune a week later: %d, %v; want 2", n, err)
	}
	if _, err := db.EnrollLinkByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned link: %v", err)
	}
}

func TestEnrollLink_UserDeleted(t *testing.T) {
	ctx := context.Background()
	db, clk := openWithClock(t)
	mustCreateUser(t, db, "alice")
	_, tok := mustCreateLink(t, db, "alice", newLink(randomBytes(20), LinkAdmin, clk.Now().Add(time.Hour)))
	if err := db.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnrollLinkByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("link of a deleted user: %v", err)
	}
}
