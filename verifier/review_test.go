package verifier_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// Findings of the security review, each pinned by a test.

// A burst of concurrent guesses cannot outrun the lockout: at most
// max_failures are checked; the rest are locked out or dropped as busy.
func TestConcurrentGuessesHitTheLockout(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	var mu sync.Mutex
	reasons := map[verifier.Reason]int{}
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("guess" + code_(t, t0)), Client: appendClient})
			if errors.Is(err, verifier.ErrBusy) {
				return // dropped: the NAS would retry
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			reasons[d.Reason]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if reasons[verifier.ReasonBadPassword] > settings.MaxFailures || len(reasons) > 2 {
		t.Fatalf("64 concurrent guesses: %v; want at most %d checked, the rest locked out", reasons, settings.MaxFailures)
	}
	for range settings.MaxFailures - reasons[verifier.ReasonBadPassword] { // lock alice if the burst did not
		e.try(t, "alice", "guess", appendClient)
	}
	// And a right code while locked is not accepted.
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Reject, verifier.ReasonLockedOut)
}

// A lockout that lands between the lock check and the commit still wins.
func TestCommitRefusedWhenLockedMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	u, _ := e.db.UserAuth(context.Background(), "alice")
	for range settings.MaxFailures { // lock alice behind the verifier's back
		if _, err := e.db.RecordFailure(context.Background(), u.ID, settings.MaxFailures, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := e.db.CommitSuccess(context.Background(), u.ID, u.Tokens[0].ID, u.Tokens[0].LastStep+1, 0)
	if ok || !errors.Is(err, store.ErrLocked) {
		t.Fatalf("CommitSuccess of a locked user: %v, %v; want false, ErrLocked", ok, err)
	}
}

// Names are one user whatever their ASCII case: "ALICE" gets alice's tokens
// and lockout, and a directory that matches case-insensitively cannot make a
// second, token-less alice by auto-creation.
func TestUserNamesIgnoreCase(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "optional", t0.Add(-time.Hour))
	expect(t, e.try(t, "ALICE", "hunter2", appendClient), verifier.Reject, verifier.ReasonBadCode)
	expect(t, e.try(t, "Alice", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")

	dir := verifier.FirstFactorFunc(func(context.Context, string, *store.User, []byte) (verifier.FirstFactorResult, error) {
		return verifier.FirstFactorResult{OK: true}, nil // the directory says yes to any case
	})
	v := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Backend: dir, Now: e.clk.Now, AutoCreateUsers: true}, settings)
	d, err := v.Verify(context.Background(), verifier.Attempt{User: "ALICE", Password: []byte("dirpw"), Client: challengeClient("vpn")})
	if err != nil || d.Outcome != verifier.Challenge {
		t.Fatalf("ALICE via the directory: %+v, %v; want a challenge for alice's token", d, err)
	}
	users, _ := e.db.ListUsers(context.Background())
	if len(users) != 1 {
		t.Fatalf("%d users; a case variant created a second account", len(users))
	}
	if _, err := e.db.CreateUser(context.Background(), store.User{Name: "aLiCe"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("creating aLiCe: %v; want ErrExists", err)
	}
}

// A flood of one user's requests does not park the workers: a request that
// finds the user's slot taken for longer than a moment is dropped as busy.
func TestFloodOfOneUserIsShed(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	slow := verifier.FirstFactorFunc(func(ctx context.Context, _ string, _ *store.User, _ []byte) (verifier.FirstFactorResult, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return verifier.FirstFactorResult{}, nil
	})
	v := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Backend: slow, Now: e.clk.Now}, settings)
	go v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("x"), Client: appendClient})
	<-entered // the first one holds alice's slot, deciding
	defer close(release)
	start := time.Now()
	_, err := v.Verify(context.Background(), verifier.Attempt{User: "ALICE", Password: []byte("y"), Client: appendClient})
	if !errors.Is(err, verifier.ErrBusy) || time.Since(start) > time.Second {
		t.Fatalf("second request of alice while one runs: %v after %v; want ErrBusy within a moment", err, time.Since(start))
	}
}

// touchFails is storage that cannot take writes for the no-op write that
// must precede answering a right password.
type touchFails struct{ verifier.Store }

func (touchFails) Touch(context.Context, int64) error { return errDisk }

// When storage cannot take writes, a right password is dropped like a wrong
// one: no Challenge, no Accept, no oracle.
func TestRightPasswordNeedsAWrite(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	e.addUser(t, "dis", "disabled", time.Time{})
	v := verifier.New(verifier.Options{Store: touchFails{e.db}, Passwords: password.NewHasher(1), Now: e.clk.Now}, settings)
	for _, tc := range []struct {
		user string
		c    verifier.Client
	}{{"alice", challengeClient("vpn")}, {"dis", appendClient}} {
		d, err := v.Verify(context.Background(), verifier.Attempt{User: tc.user, Password: []byte("hunter2"), Client: tc.c})
		if !errors.Is(err, errDisk) || d.Outcome != verifier.Reject {
			t.Fatalf("%s: %+v, %v; want the storage error (a drop)", tc.user, d, err)
		}
	}
}

// After a restart (a new Verifier on the same database, no reply cache), the
// NAS's identical retransmission of an accepted request gets Accept again,
// within the window; any other request with the used code is a replay.
func TestRetransmitAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	req := []byte("0123456789abcdef")
	pw := []byte("hunter2" + code_(t, t0))
	at := func(v *verifier.Verifier, request []byte) verifier.Decision {
		d, err := v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: pw, Client: appendClient, Request: request})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	expect(t, at(e.v, req), verifier.Accept, "")
	restarted := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now}, settings)
	e.clk.Add(5 * time.Second)
	expect(t, at(restarted, req), verifier.Accept, "")
	expect(t, at(restarted, []byte("another request!")), verifier.Reject, verifier.ReasonReplayedCode)
	expect(t, at(restarted, nil), verifier.Reject, verifier.ReasonReplayedCode)
	e.clk.Add(30 * time.Second) // past the window a reply cache keeps a reply
	expect(t, at(restarted, req), verifier.Reject, verifier.ReasonReplayedCode)
}

// The same for the second step of a challenge: the State was spent by the
// answer whose reply was lost, but its identical retransmission gets Accept.
func TestChallengeAnswerRetransmitAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	key := e.db.ChallengeKey()
	vpn := challengeClient("vpn")
	a := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now, ChallengeKey: key}, settings)
	d, _ := a.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("hunter2"), Client: vpn})
	expect(t, d, verifier.Challenge, "")
	ans := verifier.Attempt{User: "alice", Password: []byte(code_(t, t0)), State: d.State, Client: vpn, Request: []byte("fingerprint-0001")}
	d, _ = a.Verify(context.Background(), ans)
	expect(t, d, verifier.Accept, "")
	restarted := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now, ChallengeKey: key}, settings)
	e.clk.Add(2 * time.Second)
	d, _ = restarted.Verify(context.Background(), ans)
	expect(t, d, verifier.Accept, "")
	other := ans
	other.Request = []byte("fingerprint-0002")
	d, _ = restarted.Verify(context.Background(), other)
	expect(t, d, verifier.Reject, verifier.ReasonBadState)
}
