// Command radotp-bench is a RADIUS load generator for second-factor servers
// (radotp, FreeRADIUS with rlm_totp, or any other), and the tools around it.
//
//	radotp-bench users --users N [--users-file PREFIX] [--password PW] [--prefix u] [--seed S]
//	radotp-bench load  --addr HOST:PORT --secret S --users N (--concurrency C | --rate R) (--duration D | --requests N) [flags]
//	radotp-bench hashtime [--duration 3s]
//
// Users are deterministic: user i is PREFIX followed by i zero-padded; its
// TOTP key (SHA1, 6 digits, 30 s) is HMAC-SHA1(seed, name). `users` writes
// them for radotp (PREFIX.csv, for `radotp user import`) and for FreeRADIUS
// (PREFIX.freeradius: a users file with Cleartext-Password and TOTP-Secret;
// PREFIX.sql: radcheck rows). `load` recomputes the keys, so both sides agree
// without sharing a file.
//
// Every request is a fresh valid code: `load` sends each user at most once
// per time step (a server with a replay guard would rightly reject more). With
// --state FILE it remembers across runs which step each user was last sent
// in. Simulated NASes send from 127.0.0.1, 127.0.0.2, ... (--nas,
// --nas-address), each from --sockets source ports, every request with a
// Message-Authenticator. --loss drops datagrams both ways; the NAS then
// retransmits the same packet (same ID and authenticator) after --timeout
// (random up to --timeout-max), --retries times.
//
// The summary gives the rate, Accepts/Rejects/timeouts, latency percentiles,
// the generator's CPU and, with --pid, the server's CPU per request and RSS.
// --json prints it as one JSON object on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/radotp/radotp/password"
)

const usage = `usage:
  radotp-bench users --users N [--users-file PREFIX] [--password PW] [--prefix u] [--seed S]
  radotp-bench load  --addr HOST:PORT --secret S --users N (--concurrency C | --rate R) (--duration D | --requests N) [flags]
  radotp-bench hashtime [--duration 3s]
Run a subcommand with -h for its flags.
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "users":
		err = cmdUsers(args[1:], stdout, stderr)
	case "load":
		err = cmdLoad(args[1:], stdout, stderr)
	case "hashtime":
		err = cmdHashtime(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "radotp-bench: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "radotp-bench: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "radotp-bench: %s\n", err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// userFlags are the flags that define the user set, shared by users and load.
type userFlags struct {
	n                    int
	prefix, seed, passwd string
}

func (u *userFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&u.n, "users", 1000, "number of users")
	fs.StringVar(&u.prefix, "prefix", "u", "user names are PREFIX followed by a zero-padded number")
	fs.StringVar(&u.seed, "seed", "radotp-bench", "TOTP keys are HMAC-SHA1(seed, name); at most 64 bytes")
	fs.StringVar(&u.passwd, "password", "bench-password", "every user's password")
}

func (u *userFlags) set() (*userSet, error) {
	if len(u.seed) > 64 {
		return nil, usageError{"--seed: at most 64 bytes"}
	}
	s, err := newUserSet(u.n, u.prefix, u.seed, u.passwd)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return s, nil
}

func cmdUsers(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var uf userFlags
	uf.register(fs)
	file := fs.String("users-file", "users", "write PREFIX.csv (radotp user import), PREFIX.freeradius (users file) and PREFIX.sql (radcheck)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	us, err := uf.set()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := us.writeFiles(*file+".csv", *file+".freeradius", *file+".sql"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d users to %s.csv, %s.freeradius and %s.sql in %s\n", us.n, *file, *file, *file, time.Since(t0).Round(time.Millisecond))
	return nil
}

func cmdLoad(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var uf userFlags
	uf.register(fs)
	addr := fs.String("addr", "127.0.0.1:1812", "server address")
	secret := fs.String("secret", "", "shared secret (required)")
	mode := fs.String("mode", "otp", `User-Password: "otp" (the code only) or "append" (password then code)`)
	nas := fs.Int("nas", 1, "simulated NASes (source addresses)")
	nasAddr := fs.String("nas-address", "127.0.0.1", "source address of the first NAS; the others follow it (127.0.0.2, ...)")
	sockets := fs.Int("sockets", 2, "UDP sockets (source ports) per NAS, 256 IDs each")
	conc := fs.Int("concurrency", 0, "closed loop: requests outstanding at once")
	rate := fs.Float64("rate", 0, "open loop: new requests per second")
	duration := fs.Duration("duration", 0, "send new requests for this long")
	requests := fs.Int("requests", 0, "send this many new requests (and wait for a fresh time step if too few users are unused in this one)")
	timeout := fs.Duration("timeout", 3*time.Second, "wait this long for a reply before retransmitting or giving up")
	timeoutMax := fs.Duration("timeout-max", 0, "if above --timeout, each wait is random between the two (NAS-style 1s..3s)")
	retries := fs.Int("retries", 0, "retransmissions of the same packet before giving up")
	loss := fs.Float64("loss", 0, "simulated loss: drop each request and each reply with this probability (0..0.9)")
	ma := fs.Bool("message-authenticator", true, "send Message-Authenticator")
	edge := fs.Duration("edge", 0, "send nothing in the last EDGE of each 30 s step, for servers that accept only the current step (closed loop waits; open loop skips those requests)")
	pid := fs.Int("pid", 0, "server process id on this machine: report its CPU per request and RSS")
	state := fs.String("state", "", "file remembering each user's last time step, so that runs in a row never reuse a code")
	progress := fs.Duration("progress", time.Second, "progress line interval on stderr; 0 = none")
	rcvbuf := fs.Int("rcvbuf", 4<<20, "receive buffer of each socket, bytes")
	reuse := fs.Bool("reuse-unanswered", false, "send a user whose request got no answer again in the same time step (overload: too few users otherwise; a code the server did commit is then rightly rejected)")
	settle := fs.Duration("settle", 0, "before sending, wait up to this long for the --pid server to be idle (under 5 % of a CPU over 300 ms), so that a short run does not pay for the one before it")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file (go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	us, err := uf.set()
	if err != nil {
		return err
	}
	o := loadOpts{
		secret: []byte(*secret), users: us, period: 30,
		nas: *nas, sockets: *sockets, rate: *rate, conc: *conc, duration: *duration, requests: *requests,
		timeout: *timeout, timeoutMax: *timeoutMax, retries: *retries, loss: *loss, ma: *ma, edge: *edge,
		pid: *pid, state: *state, progress: *progress, rcvbuf: *rcvbuf, out: stderr, reuseUnanswered: *reuse,
	}
	switch {
	case *secret == "":
		return usageError{"--secret is required"}
	case *mode != "otp" && *mode != "append":
		return usageError{fmt.Sprintf("--mode %q: want otp or append", *mode)}
	case *loss < 0 || *loss > 0.9:
		return usageError{fmt.Sprintf("--loss %g: want 0 to 0.9", *loss)}
	case *rate > 0 && *conc > 0:
		return usageError{"give --rate or --concurrency, not both"}
	case *timeout <= 0:
		return usageError{"--timeout must be positive"}
	case *retries < 0:
		return usageError{"--retries must not be negative"}
	}
	o.codeOnly = *mode == "otp"
	if o.nasBase, err = netip.ParseAddr(*nasAddr); err != nil {
		return usageError{fmt.Sprintf("--nas-address %q: %v", *nasAddr, err)}
	}
	ua, err := net.ResolveUDPAddr("udp4", *addr)
	if err != nil {
		return usageError{fmt.Sprintf("--addr %q: %v", *addr, err)}
	}
	o.addr = netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *settle > 0 {
		if *pid <= 0 {
			return usageError{"--settle needs --pid"}
		}
		if err := waitIdle(ctx, *pid, *settle); err != nil {
			return err
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("--cpuprofile: %w", cerr)
			}
		}()
	}
	res, err := runLoad(ctx, o)
	if res != nil {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			if jerr := enc.Encode(res); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printSummary(stdout, res)
		}
	}
	return err
}

func printSummary(w io.Writer, r *loadResult) {
	loop := fmt.Sprintf("closed loop, %d outstanding", r.Concurrency)
	if r.Loop == "open" {
		loop = fmt.Sprintf("open loop, %.0f req/s offered", r.OfferedRate)
	}
	what := "password+code"
	if r.CodeOnly {
		what = "code only"
	}
	fmt.Fprintf(w, "target %s: %s, %s, %d users, %d NAS x %d sockets, loss %.0f%%\n",
		r.Target, loop, what, r.Users, r.NAS, r.Sockets, 100*r.Loss)
	fmt.Fprintf(w, "  rate        %.0f answers/s (%.0f Accepts/s) over %.2f s; settled after %.2f s\n", r.Rate, r.AcceptRate, r.WindowS, r.ElapsedS)
	fmt.Fprintf(w, "  requests    %d sent, %d retransmits; %d Accept, %d Reject, %d Challenge, %d other, %d timed out\n",
		r.Sent, r.Retransmits, r.Accepts, r.Rejects, r.Challenges, r.Others, r.Timeouts)
	fmt.Fprintf(w, "  retransmits %d Rejects after a retransmit; %d requests and %d replies lost on purpose\n",
		r.RejectsAfterRetransmit, r.LostRequests, r.LostReplies)
	if r.Invalid+r.Stray+r.NotSentNoID+r.NotSentNoUser+r.NotSentEdge > 0 {
		fmt.Fprintf(w, "  anomalies   %d invalid replies, %d late or duplicate replies; not sent: %d (no free ID), %d (no unused user), %d (step edge)\n",
			r.Invalid, r.Stray, r.NotSentNoID, r.NotSentNoUser, r.NotSentEdge)
	}
	fmt.Fprintf(w, "  latency     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n", r.P50ms, r.P90ms, r.P99ms, r.P999ms, r.MaxMs)
	if r.ServerRSSMiB > 0 {
		fmt.Fprintf(w, "  server      %.0f%% CPU, %.1f us CPU/request, RSS max %.1f MiB (peak since start %.1f MiB)\n",
			r.ServerCPUPct, r.ServerUsPerRq, r.ServerRSSMiB, r.ServerHWMMiB)
	}
	fmt.Fprintf(w, "  generator   %.0f%% CPU, %.1f us CPU/request\n", r.GenCPUPct, r.GenUsPerRq)
	fmt.Fprintf(w, "  machine     %.0f%% busy, %.0f%% waiting for the disk (all CPUs, all processes)\n", r.MachineBusyPct, r.MachineIOWaitPct)
}

// cmdHashtime measures one argon2id check with the OWASP parameters on one
// core, and on all cores at once: the ceiling of a server that hashes every
// password is cores / single-hash time.
func cmdHashtime(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hashtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := fs.Duration("duration", 3*time.Second, "measure for this long (each of the two phases)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	hash, err := password.Hash([]byte("bench-password"), password.OWASP)
	if err != nil {
		return err
	}
	check := func() {
		if ok, err := password.Check(hash, []byte("bench-password")); !ok || err != nil {
			panic(fmt.Sprintf("argon2id check failed: %v %v", ok, err))
		}
	}
	check() // warm up
	n, t0 := 0, time.Now()
	for time.Since(t0) < *d {
		check()
		n++
	}
	single := time.Since(t0) / time.Duration(n)

	cores := runtime.NumCPU()
	done := make(chan int)
	t0 = time.Now()
	for range cores {
		go func() {
			k := 0
			for time.Since(t0) < *d {
				check()
				k++
			}
			done <- k
		}()
	}
	total := 0
	for range cores {
		total += <-done
	}
	parallel := float64(total) / time.Since(t0).Seconds()
	ceiling := float64(cores) / single.Seconds()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"cores": cores, "single_ms": float64(single.Microseconds()) / 1000,
			"ceiling_per_s": ceiling, "parallel_per_s": parallel,
		})
	}
	fmt.Fprintf(stdout, "argon2id (m=%d KiB, t=%d, p=%d): %.1f ms per check on one core; ceiling %d cores / %.1f ms = %.1f checks/s; measured on %d cores at once: %.1f checks/s\n",
		password.OWASP.Memory, password.OWASP.Time, password.OWASP.Threads, float64(single.Microseconds())/1000,
		cores, float64(single.Microseconds())/1000, ceiling, cores, parallel)
	return nil
}
