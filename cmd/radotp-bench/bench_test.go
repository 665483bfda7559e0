package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The end-to-end tests run the real radotp binary (built once here), import
// the generator's user file with `radotp user import`, and load it over UDP
// from 127.0.0.1 and 127.0.0.2.

var radotpBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "radotp-bench-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	radotpBinary = filepath.Join(dir, "radotp")
	if out, err := exec.Command("go", "build", "-o", radotpBinary, "github.com/radotp/radotp/cmd/radotp").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build radotp: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestTOTP_RFC6238(t *testing.T) {
	// RFC 6238 appendix B, SHA1, the last 6 of the 8 digits.
	key := []byte("12345678901234567890")
	tp := newTOTP()
	for _, c := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		if got := string(tp.at(key, c.unix/30)); got != c.want {
			t.Errorf("TOTP at %d = %s, want %s", c.unix, got, c.want)
		}
	}
}

func TestUserSet(t *testing.T) {
	s, err := newUserSet(12345, "u", "seed", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if s.name(7) != "u00007" || s.name(12344) != "u12344" {
		t.Errorf("names %q %q", s.name(7), s.name(12344))
	}
	// The generator derives keys with its allocation-free HMAC; the files
	// are written with crypto/hmac. They must agree.
	tp := newTOTP()
	for _, i := range []int{0, 1, 999, 12344} {
		m := hmac.New(sha1.New, []byte("seed"))
		m.Write([]byte(s.name(i)))
		want := m.Sum(nil)
		if got := tp.hmac(s.seed, []byte(s.name(i))); !bytes.Equal(got, want) || !bytes.Equal(s.key(i), want) {
			t.Errorf("user %d: keys differ", i)
		}
	}
}

func TestHist(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.02 || d > 0.02 {
			t.Errorf("quantile(%g) = %s, want %s ± 2%%", c.q, got, c.want)
		}
	}
	var m hist
	m.merge(&h)
	m.add(time.Second)
	if m.n != 1001 || m.quantile(1) != time.Second {
		t.Errorf("merged: n %d max %s", m.n, m.quantile(1))
	}
	for v := uint64(0); v < 1<<20; v = v*9/8 + 1 {
		if lo := lowOf(bucketOf(v)); lo > v || lowOf(bucketOf(v)+1) <= v {
			t.Fatalf("value %d in bucket %d starting at %d", v, bucketOf(v), lo)
		}
	}
}

func TestUsersFiles(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := realMain([]string{"users", "--users", "3", "--password", "pw", "--users-file", filepath.Join(dir, "u")}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s, _ := newUserSet(3, "u", "radotp-bench", "pw")
	key := b32.EncodeToString(s.key(2))
	csv, _ := os.ReadFile(filepath.Join(dir, "u.csv"))
	fr, _ := os.ReadFile(filepath.Join(dir, "u.freeradius"))
	sql, _ := os.ReadFile(filepath.Join(dir, "u.sql"))
	if !regexp.MustCompile(`(?m)^u0002,"\$argon2id\$v=19\$m=19456,t=2,p=1\$[^"]+",` + key + `$`).Match(csv) {
		t.Errorf("CSV:\n%s", csv)
	}
	if !strings.Contains(string(fr), "u0002\tCleartext-Password := \"pw\", TOTP-Secret := \""+key+"\"\n") {
		t.Errorf("users file:\n%s", fr)
	}
	if !strings.Contains(string(sql), "('u0002','TOTP-Secret',':=','"+key+"')") || !strings.HasSuffix(string(sql), "COMMIT;\n") {
		t.Errorf("SQL:\n%s", sql)
	}
}

const testSecret = "bench-test-secret-0123456789"

// startRadotp imports n generated users into a new database and starts
// radotp serve on a free port; it returns the address and the pid.
func startRadotp(t *testing.T, n int) (netip.AddrPort, int) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[radius]
listen = "127.0.0.1:0"
[database]
path = "radotp.db"
key_file = "radotp.key"
[metrics]
listen = ""
[log]
level = "warn"
[[client]]
name = "nas"
address = "127.0.0.0/8"
secret = %q
mode = "otp"
[[client]]
name = "nas-append"
address = "127.0.1.0/24"
secret = %q
mode = "append"
`, testSecret, testSecret)
	if err := os.WriteFile(filepath.Join(dir, "radotp.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := newUserSet(n, "u", "radotp-bench", "bench-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := us.writeFiles(filepath.Join(dir, "users.csv"), "", ""); err != nil {
		t.Fatal(err)
	}
	imp := exec.Command(radotpBinary, "user", "import", "users.csv", "--config", "radotp.toml")
	imp.Dir = dir
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("radotp user import: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(radotpBinary, "serve", "--config", "radotp.toml")
	srv.Dir = dir
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait(); logf.Close() })
	// Port 0: find the port radotp got.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ap, ok := udpPort(srv.Process.Pid); ok {
			return ap, srv.Process.Pid
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	t.Fatalf("radotp serve did not listen:\n%s", log)
	return netip.AddrPort{}, 0
}

// udpPort finds the UDP socket that process pid listens on, with ss.
func udpPort(pid int) (netip.AddrPort, bool) {
	out, err := exec.Command("ss", "-Hlunp").Output()
	if err != nil {
		return netip.AddrPort{}, false
	}
	for line := range strings.Lines(string(out)) {
		if !strings.Contains(line, fmt.Sprintf("pid=%d,", pid)) {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 4 {
			if ap, err := netip.ParseAddrPort(f[3]); err == nil {
				return ap, true
			}
		}
	}
	return netip.AddrPort{}, false
}

func testLoad(t *testing.T, addr netip.AddrPort, pid, users int, mod func(*loadOpts)) *loadResult {
	t.Helper()
	us, _ := newUserSet(users, "u", "radotp-bench", "bench-password")
	o := loadOpts{
		addr: addr, secret: []byte(testSecret), users: us, codeOnly: true, period: 30,
		nas: 2, nasBase: netip.MustParseAddr("127.0.0.1"), sockets: 2,
		conc: 32, requests: 200, timeout: 3 * time.Second, ma: true, pid: pid,
	}
	mod(&o)
	res, err := runLoad(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(res)
	t.Logf("%s", j)
	return res
}

func TestLoad_Radotp(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) not installed")
	}
	addr, pid := startRadotp(t, 600)
	state := filepath.Join(t.TempDir(), "state")

	t.Run("ClosedLoopTwoNAS", func(t *testing.T) {
		res := testLoad(t, addr, pid, 600, func(o *loadOpts) { o.state = state })
		if res.Accepts != 200 || res.Rejects+res.Timeouts+res.Invalid+res.Stray != 0 || res.Sent != 200 {
			t.Errorf("want 200 Accepts and nothing else: %+v", res)
		}
		if res.ServerRSSMiB <= 0 || res.P50ms <= 0 || res.Rate <= 0 {
			t.Errorf("missing measurements: %+v", res)
		}
	})
	// The state file keeps the users of the first run out of the second,
	// within the same time step: a reused code would be rejected.
	t.Run("StateAcrossRuns", func(t *testing.T) {
		res := testLoad(t, addr, pid, 600, func(o *loadOpts) {
			o.state, o.rate, o.conc, o.requests, o.duration = state, 2000, 0, 300, 0
		})
		if res.Accepts != 300 || res.Rejects != 0 {
			t.Errorf("want 300 Accepts: %+v", res)
		}
	})
	// Loss: replies and requests dropped on purpose, the same packet sent
	// again; the reply cache must answer retransmits with the first answer.
	t.Run("LossRetransmits", func(t *testing.T) {
		res := testLoad(t, addr, pid, 600, func(o *loadOpts) {
			o.state, o.requests, o.loss = state, 100, 0.3 // the 100 users left
			o.timeout, o.timeoutMax, o.retries = 100*time.Millisecond, 200*time.Millisecond, 8
		})
		if res.Retransmits == 0 || res.LostReplies == 0 || res.LostRequests == 0 {
			t.Errorf("no loss simulated: %+v", res)
		}
		// A lost Accept must be answered again with the Accept, never with
		// a replay Reject.
		if res.RejectsAfterRetransmit != 0 || res.Rejects != 0 || res.Accepts+res.Timeouts != 100 {
			t.Errorf("want 100 Accepts (a timeout after 9 tries is possible, not a Reject): %+v", res)
		}
	})
}

// TestExpiries checks the timeout heap: whatever the order of pushes, pops
// come out in time order, each entry once, with its id and generation.
func TestExpiries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Now()
	var h expiries
	left := map[expiry]int{} // pushed and not popped yet
	for i := range 1000 {
		e := expiry{at: base.Add(time.Duration(rng.IntN(5000)) * time.Millisecond), id: byte(i), gen: uint32(i)}
		h.push(e)
		left[e]++
		if i%3 == 0 { // pops between pushes, as the timers do
			p := h.pop()
			for q := range left {
				if left[q] > 0 && q.at.Before(p.at) {
					t.Fatalf("popped %v while %v was waiting", p.at.Sub(base), q.at.Sub(base))
				}
			}
			left[p]--
		}
	}
	if len(h) != 666 {
		t.Fatalf("%d entries in the heap, want 666", len(h))
	}
	prev := time.Time{}
	for n := 0; len(h) > 0; n++ {
		e := h.pop()
		if e.at.Before(prev) {
			t.Fatalf("pop %d: %v before the previous %v", n, e.at.Sub(base), prev.Sub(base))
		}
		if left[e] <= 0 {
			t.Fatalf("pop %d: %+v was not pushed, or popped twice", n, e)
		}
		left[e]--
		prev = e.at
	}
	for e, n := range left {
		if n != 0 {
			t.Fatalf("%+v left %d times", e, n)
		}
	}
}

// TestOpenLoopSilentServer runs the open loop against a server that never
// answers: the pacers send at the rate asked, and every request is sent
// again after each timeout, then given up, exactly once.
func TestOpenLoopSilentServer(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { // read and drop, so that the socket never refuses
		b := make([]byte, 4096)
		for {
			if _, _, err := conn.ReadFromUDP(b); err != nil {
				return
			}
		}
	}()
	us, _ := newUserSet(5000, "u", "radotp-bench", "bench-password")
	o := loadOpts{
		addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), secret: []byte(testSecret), users: us, codeOnly: true, period: 30,
		nas: 1, nasBase: netip.MustParseAddr("127.0.0.1"), sockets: 7,
		rate: 2000, duration: 500 * time.Millisecond, timeout: 50 * time.Millisecond, retries: 2, ma: true,
	}
	res, err := runLoad(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The pacers send what is due when they wake, so the count follows the
	// measured window, however late the end of the run was noticed.
	sent, want := float64(res.Sent+res.NotSentEdge), 2000*res.WindowS
	if sent < 0.85*want || sent > 1.15*want {
		t.Errorf("sent %d (+%d in the step's edge) in %.3f s at 2000/s, want ~%.0f", res.Sent, res.NotSentEdge, res.WindowS, want)
	}
	if res.Answered != 0 || res.Timeouts != res.Sent || res.Retransmits != 2*res.Sent {
		t.Errorf("want every request sent 3 times, then given up once: %+v", res)
	}
	if res.MachineBusyPct <= 0 || res.MachineBusyPct > 100 || res.MachineIOWaitPct < 0 || res.MachineBusyPct+res.MachineIOWaitPct > 100 {
		t.Errorf("machine %.1f %% busy, %.1f %% iowait: want shares of 100 %%, busy above 0 (the generator ran)", res.MachineBusyPct, res.MachineIOWaitPct)
	}
}

// TestParseProcStat: busy is everything but idle and iowait, in the
// machine's "cpu" line; the per-CPU lines after it are not added again.
func TestParseProcStat(t *testing.T) {
	stat := "cpu  100 5 40 800 30 2 3 20 7 0\ncpu0 50 2 20 400 15 1 1 10 3 0\nintr 123\n"
	t0, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if t0 != (machineTicks{busy: 100 + 5 + 40 + 2 + 3 + 20, iowait: 30, total: 1000}) {
		t.Fatalf("parsed %+v", t0)
	}
	t1 := machineTicks{busy: t0.busy + 150, iowait: t0.iowait + 10, total: t0.total + 200}
	if b, w := t1.pct(t0); b != 75 || w != 5 {
		t.Errorf("pct = %.1f, %.1f; want 75, 5", b, w)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2 3\n", "cpu  a 5 40 800 30 2 3 20\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}
