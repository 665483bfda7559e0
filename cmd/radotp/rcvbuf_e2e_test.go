package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestServeReceiveBuffer: radius.receive_buffer reaches the socket of a
// running radotp (the start-up log gives the size the kernel reports, or a
// warning with the sysctl that lifts its cap), and a size out of range stops
// radotp at start with the key named.
func TestServeReceiveBuffer(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, writeConfig(t, dir, ""))
	if !strings.Contains(s.logs(), `msg="radius: socket receive buffer" bytes=`) ||
		!strings.Contains(s.logs(), `radius.receive_buffer="0 (the system's default)"`) {
		t.Errorf("no start-up line with the default receive buffer:\n%s", s.logs())
	}
	s.stop(t)

	cfg := writeConfig(t, dir, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	withBuf := strings.Replace(string(b), `listen = "127.0.0.1:0"`, "listen = \"127.0.0.1:0\"\nreceive_buffer = "+strconv.Itoa(n), 1)
	if err := os.WriteFile(cfg, []byte(withBuf), 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, cfg)
	granted := `msg="radius: socket receive buffer" bytes=` + strconv.Itoa(2*n) + " radius.receive_buffer=" + strconv.Itoa(n)
	capped := `msg="radius.receive_buffer: the kernel capped the socket's receive buffer at net.core.rmem_max" asked=` + strconv.Itoa(n)
	switch {
	case strings.Contains(s.logs(), granted):
	case os.Geteuid() != 0 && strings.Contains(s.logs(), capped) && strings.Contains(s.logs(), "sysctl -w net.core.rmem_max="+strconv.Itoa(n)):
		t.Logf("not root: the cap was reported")
	default:
		t.Errorf("receive_buffer = %d as uid %d: want %q in the log:\n%s", n, os.Geteuid(), granted, s.logs())
	}
	s.stop(t)

	bad := strings.Replace(withBuf, "receive_buffer = "+strconv.Itoa(n), "receive_buffer = 1000", 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := admin(t, cfg, "", "serve")
	if code == 0 || !strings.Contains(stderr, "radius.receive_buffer") || !strings.Contains(stderr, "65536") {
		t.Errorf("receive_buffer = 1000: exit %d, stderr:\n%s", code, stderr)
	}
}
