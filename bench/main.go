// Command bench runs radotp, FreeRADIUS 3.2 with rlm_totp and the machine's
// ceiling side by side under the same load generator (cmd/radotp-bench), in
// one run, and prints one table with the ratios. `make bench` runs it;
// `make bench-quick` runs a short variant. See docs/benchmarks.md.
//
//	go run ./bench [--quick] [--rounds 3] [--users 1000000] [--work /tmp/radotp-bench] [--freeradius=false] [--awake]
//
// FreeRADIUS comes from Debian's packages through the shared recipe
// ../shared/bench/freeradius/run.sh (install, configure, start, stop; it
// needs root and apt); the users file and the SQLite radcheck rows are then
// replaced by the same users radotp has. The ceiling is
// ../shared/bench/ceiling. Everything listens on 127.0.0.1.
//
// Scenarios:
//
//	(a) code only: closed-loop capacity with 1,000,000 users; login storms of
//	    1,000 fresh users on a 1,000-user and on the 1,000,000-user database
//	(b) password + code with argon2id (OWASP), against cores / one hash
//	(c) 10x overload (open loop) for 30 s: goodput, drops, peak RSS
//	(d) 10 % loss with NAS retransmits (1-3 s): Rejects after a retransmit
//	(e) latency at half of each server's capacity
//
// The (a) runs are repeated in --rounds rounds, the targets in a rotating
// order, so that every ratio compares runs minutes apart at most; the table
// gives the median and the range over the rounds.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/radotp/radotp/store"
)

const (
	radotpSecret = "bench-secret-0123456789"
	frSecret     = "testing123" // clients.conf as shipped: client localhost, 127.0.0.1
	portBig      = 28120        // radotp with --users users
	portSmall    = 28121        // radotp with 1,000 users
	portCeiling  = 28199
	frFilesPort  = 1812
	frSQLPort    = 1822
	frRaddb      = "/etc/freeradius/3.0"
	frDB         = "/var/lib/freeradius/totp2fa.db" // where run.sh puts rlm_sql_sqlite's database
	edgeGuard    = "20ms"                           // rlm_totp 3.2.1 accepts the current step only
	smallUsers   = 1000
	stormSize    = 1000
)

type options struct {
	root, work, shared string
	users              int
	rounds             int
	dur                time.Duration // each capacity run
	overDur, lossDur   time.Duration
	halfDur, argonDur  time.Duration
	conc, sockets      int
	freeradius         bool
	awake              bool
	out                string
}

func main() {
	var o options
	quick := flag.Bool("quick", false, "short runs, one round (the databases are the same)")
	flag.StringVar(&o.work, "work", "/tmp/radotp-bench", "work directory: binaries, users, databases, logs, results (kept between runs)")
	flag.StringVar(&o.shared, "shared", "../shared/bench", "the shared FreeRADIUS recipe and ceiling, relative to the repository")
	flag.IntVar(&o.users, "users", 1000000, "users of the large database (radotp and FreeRADIUS)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the capacity runs and storms")
	flag.DurationVar(&o.dur, "duration", 15*time.Second, "length of each capacity run")
	flag.DurationVar(&o.overDur, "overload-duration", 30*time.Second, "length of the overload runs")
	flag.DurationVar(&o.lossDur, "loss-duration", 30*time.Second, "length of the loss runs")
	flag.DurationVar(&o.halfDur, "half-duration", 15*time.Second, "length of the half-rate latency runs")
	flag.DurationVar(&o.argonDur, "argon-duration", 20*time.Second, "length of the argon2id run")
	flag.IntVar(&o.conc, "concurrency", 128, "closed loop: requests outstanding (FreeRADIUS's socket drops above ~200 with its default buffer)")
	flag.IntVar(&o.sockets, "sockets", 4, "closed loop: sockets of the one NAS (127.0.0.1, the only client FreeRADIUS knows)")
	flag.BoolVar(&o.freeradius, "freeradius", true, "run FreeRADIUS too (needs root, apt and ../shared/bench/freeradius)")
	flag.BoolVar(&o.awake, "awake", false, "keep every CPU busy with SCHED_IDLE spinners during the runs, so that no server pays for idle CPUs' wake-ups (see docs/benchmarks.md)")
	flag.StringVar(&o.out, "out", "", "also write the report to this file (default WORK/results-TIME.md)")
	flag.Parse()
	if *quick {
		o.rounds = 1
		o.dur, o.overDur, o.lossDur, o.halfDur, o.argonDur = 5*time.Second, 10*time.Second, 10*time.Second, 5*time.Second, 10*time.Second
	}
	root, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	o.root = root
	if !filepath.IsAbs(o.shared) {
		o.shared = filepath.Join(root, o.shared)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, ctx: ctx}
	err = b.run()
	b.cleanup()
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(1)
}

type bench struct {
	o   options
	ctx context.Context
	log *os.File

	radotp, gen, ceiling string // binaries
	stops                []func()
	rep                  report
}

func (b *bench) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "== %s %s\n", time.Now().Format("15:04:05"), msg)
	if b.log != nil {
		fmt.Fprintf(b.log, "== %s %s\n", time.Now().Format("15:04:05"), msg)
	}
}

func (b *bench) cleanup() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		b.stops[i]()
	}
	b.stops = nil
}

// atExit registers f to run at the end (in reverse order).
func (b *bench) atExit(f func()) { b.stops = append(b.stops, f) }

// cmd runs a command, its output to the log; the error carries the output's
// tail.
func (b *bench) cmd(dir string, env []string, name string, args ...string) error {
	c := exec.CommandContext(b.ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	var tail bytes.Buffer
	w := io.MultiWriter(b.log, &tail)
	c.Stdout, c.Stderr = w, w
	fmt.Fprintf(b.log, "$ %s %s\n", name, strings.Join(args, " "))
	if err := c.Run(); err != nil {
		t := tail.String()
		if len(t) > 2000 {
			t = t[len(t)-2000:]
		}
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, t)
	}
	return nil
}

func (b *bench) run() error {
	o := b.o
	if err := os.MkdirAll(filepath.Join(o.work, "state"), 0o755); err != nil {
		return err
	}
	var err error
	if b.log, err = os.OpenFile(filepath.Join(o.work, "bench.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	b.say("work directory %s (log: bench.log)", o.work)
	b.rep.start = time.Now()
	b.rep.load0 = loadavg()
	b.rep.opts = o
	b.rep.machine = machine()

	if err := b.build(); err != nil {
		return err
	}
	bigUsers, err := b.userFiles(o.users, "u")
	if err != nil {
		return err
	}
	smallUsersFile, err := b.userFiles(smallUsers, "u")
	if err != nil {
		return err
	}
	bigDir, err := b.radotpDB(o.users, portBig, bigUsers)
	if err != nil {
		return err
	}
	smallDir, err := b.radotpDB(smallUsers, portSmall, smallUsersFile)
	if err != nil {
		return err
	}
	var fr *freeradius
	if o.freeradius {
		if fr, err = b.setupFreeRADIUS(bigUsers); err != nil {
			return fmt.Errorf("FreeRADIUS: %w (run with --freeradius=false to measure radotp alone)", err)
		}
	}

	big, err := b.startRadotp(bigDir, portBig)
	if err != nil {
		return err
	}
	small, err := b.startRadotp(smallDir, portSmall)
	if err != nil {
		return err
	}
	ceil, err := b.startCeiling()
	if err != nil {
		return err
	}

	if o.awake {
		stop, err := startSpinners(runtime.NumCPU())
		if err != nil {
			return err
		}
		b.atExit(stop)
		b.say("--awake: %d SCHED_IDLE spinners keep the CPUs from idling", runtime.NumCPU())
	}

	t := b.targets(big, small, ceil, fr)
	if err := b.capacity(t); err != nil {
		return err
	}
	if err := b.argon(t); err != nil {
		return err
	}
	if err := b.halfRate(t); err != nil {
		return err
	}
	if err := b.loss(t); err != nil {
		return err
	}
	// Last: it fills queues and caches. radotp starts afresh so that its
	// peak RSS is this scenario's.
	big.stop()
	if big, err = b.startRadotp(bigDir, portBig); err != nil {
		return err
	}
	t.radotp.pid = big.pid
	if err := b.overload(t); err != nil {
		return err
	}
	b.rep.end = time.Now()
	b.rep.load1 = loadavg()

	text := b.rep.render()
	fmt.Print(text)
	out := o.out
	if out == "" {
		out = filepath.Join(o.work, "results-"+b.rep.start.UTC().Format("20060102-150405")+".md")
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(b.rep.samples, "", "  ")
	_ = os.WriteFile(strings.TrimSuffix(out, ".md")+".json", raw, 0o644)
	b.say("report written to %s", out)
	return nil
}

// build compiles radotp, the generator and the ceiling into WORK/bin.
func (b *bench) build() error {
	bin := filepath.Join(b.o.work, "bin")
	b.radotp, b.gen, b.ceiling = filepath.Join(bin, "radotp"), filepath.Join(bin, "radotp-bench"), filepath.Join(bin, "ceiling")
	b.say("building radotp, radotp-bench and the ceiling")
	if err := b.cmd(b.o.root, nil, "go", "build", "-o", b.radotp, "./cmd/radotp"); err != nil {
		return err
	}
	if err := b.cmd(b.o.root, nil, "go", "build", "-o", b.gen, "./cmd/radotp-bench"); err != nil {
		return err
	}
	return b.cmd(filepath.Join(b.o.shared, "ceiling"), nil, "go", "build", "-o", b.ceiling, "main.go")
}

// userFiles writes the user set of n users once; it returns the path prefix.
func (b *bench) userFiles(n int, prefix string) (string, error) {
	p := filepath.Join(b.o.work, fmt.Sprintf("users-%d", n))
	if _, err := os.Stat(p + ".sql"); err == nil {
		return p, nil
	}
	b.say("writing %d users (radotp CSV, FreeRADIUS users file and SQL)", n)
	return p, b.cmd(b.o.work, nil, b.gen, "users", "--users", strconv.Itoa(n), "--prefix", prefix, "--users-file", p)
}

// radotpDB makes WORK/radotp-N with a config and, once, the imported users.
func (b *bench) radotpDB(n, port int, users string) (string, error) {
	dir := filepath.Join(b.o.work, fmt.Sprintf("radotp-%d", n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`# radotp under the benchmark: durable replay state (synchronous=FULL, as always),
# Message-Authenticator required (the default). Decisions go to the audit trail;
# the per-decision log line is off (level warn), as FreeRADIUS's "auth = no".
[radius]
listen = "127.0.0.1:%d"
[database]
path = "radotp.db"
key_file = "radotp.key"
[log]
level = "warn"
[metrics]
listen = "127.0.0.1:0"
[[client]]
name = "bench-otp"
address = "127.0.0.0/8"
secret = %q
mode = "otp"
[[client]]
name = "bench-append"
address = "127.0.1.0/24"
secret = %q
mode = "append"
`, port, radotpSecret, radotpSecret)
	if err := os.WriteFile(filepath.Join(dir, "radotp.toml"), []byte(cfg), 0o600); err != nil {
		return "", err
	}
	stamp := filepath.Join(dir, "imported")
	if _, err := os.Stat(stamp); err == nil {
		return dir, b.clearAudit(dir)
	}
	for _, f := range []string{"radotp.db", "radotp.db-wal", "radotp.db-shm", "radotp.key"} {
		os.Remove(filepath.Join(dir, f))
	}
	os.Remove(b.statePath(fmt.Sprintf("radotp-%d", n))) // a new database: no code used yet
	b.say("importing %d users into radotp (%s)", n, dir)
	t0 := time.Now()
	if err := b.cmd(dir, nil, b.radotp, "user", "import", users+".csv", "--config", "radotp.toml"); err != nil {
		return "", err
	}
	b.rep.importTimes = append(b.rep.importTimes, [2]float64{float64(n), time.Since(t0).Seconds()})
	return dir, os.WriteFile(stamp, nil, 0o600)
}

// clearAudit deletes the audit trail the previous runs left in dir's
// database (no server runs yet), so that every run starts from the same
// database: 1.4-1.7 million decisions a run would otherwise pile up (12 million
// rows, 1.1 GB, after nine runs).
func (b *bench) clearAudit(dir string) error {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "radotp.db"), KeyFile: filepath.Join(dir, "radotp.key")})
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	t0 := time.Now()
	n, err := db.PruneAudit(ctx, time.Now().Add(time.Hour))
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: clearing the audit trail: %w", dir, err)
	}
	if n > 0 {
		b.say("cleared %d audit entries of earlier runs from %s in %.1f s", n, dir, time.Since(t0).Seconds())
	}
	return nil
}

func (b *bench) statePath(target string) string {
	return filepath.Join(b.o.work, "state", target+".state")
}

// proc is a server process the bench started.
type proc struct {
	pid  int
	stop func()
}

// startRadotp starts radotp serve in dir and waits until it listens.
func (b *bench) startRadotp(dir string, port int) (*proc, error) {
	if err := portFree(port); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	c := exec.Command(b.radotp, "serve", "--config", "radotp.toml")
	c.Dir = dir
	c.Stdout, c.Stderr = logf, logf
	if pp := os.Getenv("BENCH_PPROF"); pp != "" && port == portBig {
		c.Env = append(os.Environ(), "RADOTP_PPROF="+pp)
	}
	if err := c.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { c.Wait(); logf.Close(); close(exited) }()
	p := &proc{pid: c.Process.Pid}
	p.stop = func() {
		c.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			c.Process.Kill()
			<-exited
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-exited:
			return nil, fmt.Errorf("radotp serve in %s exited:\n%s", dir, tail(filepath.Join(dir, "serve.log")))
		case <-time.After(100 * time.Millisecond):
		}
		if listening(port, p.pid) {
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("radotp serve in %s did not listen within 30 s", dir)
		}
	}
	b.atExit(p.stop)
	return p, nil
}

func (b *bench) startCeiling() (*proc, error) {
	if err := portFree(portCeiling); err != nil {
		return nil, err
	}
	c := exec.Command(b.ceiling, "-addr", fmt.Sprintf("127.0.0.1:%d", portCeiling), "-secret", radotpSecret)
	c.Stdout, c.Stderr = b.log, b.log
	if err := c.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	p := &proc{pid: c.Process.Pid, stop: func() { c.Process.Kill(); <-exited }}
	for i := 0; !listening(portCeiling, p.pid); i++ {
		if i == 100 {
			p.stop()
			return nil, errors.New("the ceiling did not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.atExit(p.stop)
	return p, nil
}

// listening reports whether pid has a UDP socket bound to port on 127.0.0.1.
func listening(port, pid int) bool {
	out, err := exec.Command("ss", "-Hlunp", fmt.Sprintf("sport = :%d", port)).Output()
	return err == nil && bytes.Contains(out, []byte(fmt.Sprintf("pid=%d,", pid)))
}

func portFree(port int) error {
	out, err := exec.Command("ss", "-Hlunp", fmt.Sprintf("sport = :%d", port)).Output()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("UDP port %d is in use:\n%s", port, out)
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// machine describes the CPU: cores and model.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%d cores, %s", runtime.NumCPU(), model)
}
