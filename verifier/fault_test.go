package verifier_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// Storage faults caused for real: another process holding the SQLite write
// lock, a WAL file the kernel refuses to write. Whatever happens, a request
// is never accepted unless its step was committed, and a code that was not
// committed still works once storage is back.

func TestMain(m *testing.M) {
	// Re-executed as the other process: hold the write lock, then exit.
	if path := os.Getenv("RADOTP_TEST_HOLD_LOCK"); path != "" {
		holdLock(path)
		return
	}
	os.Exit(m.Run())
}

func holdLock(path string) {
	ms, _ := strconv.Atoi(os.Getenv("RADOTP_TEST_HOLD_MS"))
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		os.Exit(2)
	}
	tx, err := db.Begin()
	if err == nil {
		_, err = tx.Exec(`BEGIN IMMEDIATE`) // no-op error if already in a tx
		_ = err
		_, err = tx.Exec(`UPDATE users SET email = email`) // takes the write lock
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Duration(ms) * time.Millisecond)
	tx.Rollback()
}

// lockHolder starts another process that holds the write lock for d and
// returns once it holds it.
func lockHolder(t *testing.T, path string, d time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RADOTP_TEST_HOLD_LOCK="+path, "RADOTP_TEST_HOLD_MS="+strconv.Itoa(int(d/time.Millisecond)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder did not lock: %q %v", line, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func faultEnv(t *testing.T, busy time.Duration) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "radotp.db")
	clk := newClock(t0)
	db, err := store.Open(context.Background(), store.Options{Path: path, KeyFile: filepath.Join(dir, "k"), Now: clk.Now, BusyTimeout: busy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clk: clk, v: verifier.New(verifier.Options{Store: db, Passwords: password.NewHasher(2), Now: clk.Now}, settings)}
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	return e, path
}

func TestWriteLockHeldBriefly(t *testing.T) {
	e, path := faultEnv(t, 5*time.Second)
	lockHolder(t, path, 300*time.Millisecond)
	// Served after waiting for the lock.
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")
}

func TestWriteLockHeldTooLong(t *testing.T) {
	e, path := faultEnv(t, 300*time.Millisecond)
	holder := lockHolder(t, path, 20*time.Second)
	pw := "hunter2" + code_(t, t0)
	d, err := e.v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(pw), Client: appendClient})
	if err == nil || d.Outcome == verifier.Accept {
		t.Fatalf("with the write lock held elsewhere: %+v, %v; want an error (drop), never Accept", d, err)
	}
	t.Logf("dropped as it should: %v", err)
	holder.Process.Kill()
	holder.Wait()
	// The code was not consumed: it works once the lock is free.
	expect(t, e.try(t, "alice", pw, appendClient), verifier.Accept, "")
}

// The kernel refuses writes to the WAL (an immutable file, as a read-only
// or failing disk would): the commit fails, the request is not accepted.
func TestWALNotWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("RADOTP_E2E") == "1" {
			t.Fatal("RADOTP_E2E=1: needs root for chattr")
		}
		t.Skip("needs root (chattr +i)")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed (e2fsprogs)")
	}
	e, path := faultEnv(t, time.Second)
	wal := path + "-wal"
	if out, err := exec.Command("chattr", "+i", wal).CombinedOutput(); err != nil {
		t.Skipf("chattr +i not supported on this file system: %s", out)
	}
	defer exec.Command("chattr", "-i", wal).Run()
	pw := "hunter2" + code_(t, t0)
	d, err := e.v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(pw), Client: appendClient})
	if err == nil || d.Outcome == verifier.Accept {
		t.Fatalf("WAL not writable: %+v, %v; want an error, never Accept", d, err)
	}
	t.Logf("dropped as it should: %v", err)
	if out, err := exec.Command("chattr", "-i", wal).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %s", out)
	}
	expect(t, e.try(t, "alice", pw, appendClient), verifier.Accept, "")
}

// TestNotEnrolledHookAfterWrite: a right password of a user who needs a
// token and has none is acted on (the hook mails a link) only once storage
// has taken the request's durable write; while it cannot, the request is
// dropped like any other and nobody is mailed.
func TestNotEnrolledHookAfterWrite(t *testing.T) {
	e, path := faultEnv(t, 300*time.Millisecond)
	e.addUser(t, "newbie", "", time.Time{})
	var told []string
	v := withNotEnrolledHook(e, &told)
	tries := []struct {
		name, pw string
		client   verifier.Client
	}{
		{"challenge", "hunter2", challengeClient("vpn")},
		{"append, password only", "hunter2", appendClient},
		{"append, password and code", "hunter2" + code_(t, t0), appendClient},
	}
	holder := lockHolder(t, path, 20*time.Second)
	for _, tr := range tries {
		d, err := v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte(tr.pw), Client: tr.client})
		if err == nil {
			t.Errorf("%s, write lock held elsewhere: %+v; want an error (drop)", tr.name, d)
		}
	}
	if len(told) != 0 {
		t.Fatalf("hook called for %v while storage took no writes; want never", told)
	}
	holder.Process.Kill()
	holder.Wait()
	for _, tr := range tries {
		if _, err := v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte(tr.pw), Client: tr.client}); err != nil {
			t.Errorf("%s, storage back: %v", tr.name, err)
		}
	}
	if len(told) != len(tries) {
		t.Fatalf("hook called for %v once storage was back; want once per request", told)
	}
}
