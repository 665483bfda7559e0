package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Operations as an admin runs them: SIGHUP reload, health endpoints, online
// backup and restore, and start-up that fails closed.

func TestReloadOnSIGHUP(t *testing.T) {
	requireTools(t, "radclient")
	dir := t.TempDir()
	cfg := writeModeConfig(t, dir, "append", "", "")
	addUser(t, cfg, "alice", "hunter2", "--activate-now")
	s := startServer(t, cfg)
	got, _ := radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
	expectReply(t, "before reload", got, "Access-Reject")

	original, _ := os.ReadFile(cfg)
	reload := func(content string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	// The client's policy becomes "disabled": the password alone passes.
	reload(strings.Replace(string(original), `challenge_prompt = "Code please"`, "challenge_prompt = \"Code please\"\npolicy = \"disabled\"", 1))
	waitFor(t, "reload applied", func() bool { return s.metric(t, "radotp_config_reloads_total") == 1 })
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
	expectReply(t, "after reload", got, "Access-Accept")

	good, _ := os.ReadFile(cfg)
	for i, bad := range []string{
		"[radius\nlisten = ", // syntax error
		string(good) + "\n[[client]]\nname = \"gw\"\naddress = \"10.0.0.1\"\nsecret = \"another-secret-0123456789\"\n", // duplicate name
		strings.Replace(string(good), "secret = \""+e2eSecret+"\"", `secret = ""`, 1),                                  // empty secret
	} {
		reload(bad)
		waitFor(t, "reload refused", func() bool { return s.metric(t, "radotp_config_reload_failures_total") == float64(i+1) })
		got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
		expectReply(t, "old config keeps serving", got, "Access-Accept")
	}
	if !strings.Contains(s.logs(), "config reload refused") {
		t.Fatalf("no log line for the refused reload:\n%s", s.logs())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for: %s", what)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

func TestHealthBackupRestore(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	dir := t.TempDir()
	cfg := writeModeConfig(t, dir, "append", "", "")
	key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
	s := startServer(t, cfg)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, "http://"+s.stats+path); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if _, body := httpGet(t, "http://"+s.stats+"/metrics"); !regexp.MustCompile(`(?m)^radotp_build_info\{goversion="go[^"]+",revision="[^"]+",version="dev"\} 1$`).MatchString(body) {
		t.Fatal("no radotp_build_info sample")
	}
	for _, g := range []string{"radotp_radius_in_flight", "radotp_radius_queue_depth", "radotp_radius_reply_cache_entries"} {
		if s.metric(t, g) < 0 {
			t.Fatalf("%s negative", g)
		}
	}
	c := totpCode(t, key)
	got, _ := radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2`+c+`"`)
	expectReply(t, "accept before backup", got, "Access-Accept")

	// Online backup while the server runs.
	copyPath := filepath.Join(dir, "backup.db")
	out := mustAdmin(t, cfg, "", "backup", copyPath)
	if !strings.Contains(out, "written to "+copyPath) {
		t.Fatalf("backup: %s", out)
	}
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", err, fi)
	}
	if _, errs, code := admin(t, cfg, "", "backup", copyPath); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("backup over an existing file: exit %d %s", code, errs)
	}
	s.stop(t)

	// Restore (README): stop, put the copy in place with the same key file.
	rdir := t.TempDir()
	os.Rename(copyPath, filepath.Join(rdir, "radotp.db"))
	k, _ := os.ReadFile(filepath.Join(dir, "radotp.key"))
	os.WriteFile(filepath.Join(rdir, "radotp.key"), k, 0o600)
	rcfg := writeModeConfig(t, rdir, "append", "", "")
	s = startServer(t, rcfg)
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2`+c+`"`)
	expectReply(t, "code used before the backup, after restore", got, "Access-Reject")
	if s.metric(t, reason("replayed_code")) != 1 {
		t.Fatal("restored database forgot the used step")
	}
}

// radotp refuses to start, with a sentence saying what to fix, on a
// database that is not one, and on a key file that does not match; it never
// re-creates anything.
func TestStartFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"CorruptDatabase", func(t *testing.T, dir string) {
			junk := make([]byte, 8192)
			rand.Read(junk)
			os.WriteFile(filepath.Join(dir, "radotp.db"), junk, 0o600)
		}, "radotp.db"},
		{"WrongKey", func(t *testing.T, dir string) {
			mustAdmin(t, filepath.Join(dir, "radotp.toml"), "pw\n", "user", "add", "alice", "--password-stdin")
			k := make([]byte, 32)
			rand.Read(k)
			os.WriteFile(filepath.Join(dir, "radotp.key"), []byte(encodeKey(k)), 0o600)
		}, "does not match"},
		{"MissingKey", func(t *testing.T, dir string) {
			mustAdmin(t, filepath.Join(dir, "radotp.toml"), "pw\n", "user", "add", "alice", "--password-stdin")
			os.Remove(filepath.Join(dir, "radotp.key"))
		}, "restore the key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeModeConfig(t, dir, "append", "", "")
			tc.setup(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, "radotp.db"))
			cmd := exec.Command(binary, "serve", "--config", cfg)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(errb.String(), tc.want) {
					t.Fatalf("exit %v, stderr %q; want a failure naming %q", err, errb.String(), tc.want)
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatal("radotp started anyway")
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "radotp.db")); !bytes.Equal(before, after) {
				t.Fatal("the database file was changed")
			}
			if _, err := os.Stat(filepath.Join(dir, "radotp.key")); tc.name == "MissingKey" && err == nil {
				t.Fatal("a new key file was created")
			}
		})
	}
}

func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) + "\n" }
