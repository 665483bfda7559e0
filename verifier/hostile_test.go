package verifier_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// Codes of the wrong shape are simply wrong: nothing is normalised, so the
// replay guard sees exactly what the check saw.
func TestCodeShapes(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	c := code_(t, t0)
	otp := verifier.Client{Name: "gw", Mode: verifier.ModeOTP}
	for name, in := range map[string]string{
		"FiveDigits":  c[:5],
		"SevenDigits": c + "0",
		"EightDigits": c + "00",
		"Spaced":      c[:3] + " " + c[3:],
		"Leading":     " " + c,
		"Trailing":    c + " ",
		"FullWidth":   "１２３４５６",
		"Letters":     "abcdef",
		"Empty":       "",
		"NUL":         c[:5] + "\x00",
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, e.try(t, "alice", in, otp), verifier.Reject, verifier.ReasonBadCode)
			e.db.UnlockUser(context.Background(), "alice")
		})
	}
	// And the right code still works: none of the above consumed it.
	expect(t, e.try(t, "alice", c, otp), verifier.Accept, "")
}

// FuzzVerify throws arbitrary input at the whole decision (real store, fake
// clock). Invariants: no panic, no error (storage is healthy), and an Accept
// only when the input carries the right password and a code of the window.
func FuzzVerify(f *testing.F) {
	for _, s := range []struct {
		user, pw, sep string
		mode          byte
	}{
		{"alice", "hunter2" + "287082", "", 0},
		{"alice", "hunter2,287082", ",", 0},
		{"alice", "287082", "", 1},
		{"alice", "hunter2", "", 2},
		{"alice", "hunter2", "", 3},
		{"mallory", "hunter2123456", "", 0},
		{"alice", "\xff\xfe", "", 0},
		{"", "", "", 2},
	} {
		f.Add(s.user, []byte(s.pw), s.sep, s.mode, []byte(nil))
	}
	e := newEnvF(f)
	modes := []verifier.Mode{verifier.ModeAppend, verifier.ModeOTP, verifier.ModeChallenge, verifier.ModeAuto}
	window := func() [][]byte {
		var cs [][]byte
		for off := -1; off <= 1; off++ {
			cs = append(cs, []byte(codeAt(f, e.clk.Now().Add(time.Duration(off)*30*time.Second))))
		}
		return cs
	}
	f.Fuzz(func(t *testing.T, user string, pw []byte, sep string, mode byte, state []byte) {
		e.clk.Add(30 * time.Second) // a fresh step each run, so Accepts stay possible
		c := verifier.Client{Name: "c", Mode: modes[int(mode)%len(modes)], Separator: sep}
		d, err := e.v.Verify(context.Background(), verifier.Attempt{User: user, Password: pw, Client: c, State: state})
		if err != nil {
			t.Fatalf("error with a healthy store: %v", err)
		}
		e.db.UnlockUser(context.Background(), "alice")
		if d.Outcome != verifier.Accept {
			return
		}
		if user != "alice" {
			t.Fatalf("Accept for %q", user)
		}
		if !slices.ContainsFunc(window(), func(code []byte) bool { return bytes.HasSuffix(pw, code) }) {
			t.Fatalf("Accept without a code of the window: mode %s, password %q", c.Mode, pw)
		}
		if c.Mode != verifier.ModeOTP && len(state) == 0 && !bytes.HasPrefix(pw, []byte("hunter2")) {
			t.Fatalf("Accept without the password: mode %s, password %q", c.Mode, pw)
		}
	})
}

// newEnvF is newEnv with alice, for a fuzz target.
func newEnvF(f *testing.F) *env {
	e := newEnv(f)
	e.addUser(f, "alice", "", t0.Add(-time.Hour))
	return e
}

func storeUser(name, hash string) store.User { return store.User{Name: name, PasswordHash: hash} }

// Unknown users cost one password hash like known ones, so the time of a
// Reject does not tell whether a user exists. With the dummy hash removed,
// the unknown-user path would be hundreds of times faster.
func TestRejectTimingDoesNotRevealUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes with the real argon2id parameters")
	}
	e := newEnv(t)
	h, _ := password.Hash([]byte("hunter2"), password.OWASP)
	if _, err := e.db.CreateUser(context.Background(), storeUser("alice", h)); err != nil {
		t.Fatal(err)
	}
	e.addToken(t, "alice", key, t0.Add(-time.Hour))
	e.v.SetSettings(verifier.Settings{Skew: 1, MaxFailures: 1000, LockoutDuration: time.Minute})
	// Known and unknown alternate, so that a burst of other work on the
	// machine (CI runs the packages in parallel) slows both alike.
	var ks, us []time.Duration
	for range 9 {
		for _, user := range []string{"alice", "nobody"} {
			start := time.Now()
			d := e.try(t, user, "wrongpw"+code_(t, t0), appendClient)
			took := time.Since(start)
			if d.Outcome != verifier.Reject {
				t.Fatal("accepted")
			}
			if user == "alice" {
				ks = append(ks, took)
			} else {
				us = append(us, took)
			}
		}
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	known, unknown := median(ks), median(us)
	ratio := float64(unknown) / float64(known)
	t.Logf("median reject: known user %v, unknown user %v (ratio %.2f)", known, unknown, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Fatalf("reject time reveals whether a user exists: known %v, unknown %v", known, unknown)
	}
}
