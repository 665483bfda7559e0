package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// result is the generator's JSON summary (cmd/radotp-bench loadResult).
type result struct {
	Rate                   float64 `json:"rate"`
	AcceptRate             float64 `json:"accept_rate"`
	OfferedRate            float64 `json:"offered_rate"`
	WindowS                float64 `json:"window_s"`
	Sent                   int64   `json:"sent"`
	Retransmits            int64   `json:"retransmits"`
	Answered               int64   `json:"answered"`
	Accepts                int64   `json:"accepts"`
	Rejects                int64   `json:"rejects"`
	Timeouts               int64   `json:"timeouts"`
	RejectsAfterRetransmit int64   `json:"rejects_after_retransmit"`
	Invalid                int64   `json:"invalid"`
	Stray                  int64   `json:"stray"`
	NotSentNoID            int64   `json:"not_sent_no_id"`
	NotSentNoUser          int64   `json:"not_sent_no_user"`
	P50ms                  float64 `json:"p50_ms"`
	P99ms                  float64 `json:"p99_ms"`
	MaxMs                  float64 `json:"max_ms"`
	ServerCPUPct           float64 `json:"server_cpu_pct"`
	ServerUsPerRq          float64 `json:"server_us_per_req"`
	ServerRSSMiB           float64 `json:"server_rss_max_mib"`
	ServerHWMMiB           float64 `json:"server_rss_peak_mib"`
	GenCPUPct              float64 `json:"generator_cpu_pct"`
	GenUsPerRq             float64 `json:"generator_us_per_req"`
	MachineBusyPct         float64 `json:"machine_busy_pct"`
	MachineIOWaitPct       float64 `json:"machine_iowait_pct"`
}

// sample is one generator run.
type sample struct {
	Scenario string   `json:"scenario"`
	Target   string   `json:"target"`
	Round    int      `json:"round"`
	Args     []string `json:"args"`
	Result   result   `json:"result"`
}

// target is a server under test and how the generator talks to it.
type target struct {
	key, label string
	addr       string
	secret     string
	mode       string // otp: the code only; append: password+code
	users      int
	prefix     string
	pid        int
	state      string // the generator's --state name: one per database
}

type targetSet struct {
	radotp, small, ceiling, frFiles, frSQL *target
}

func (b *bench) targets(big, small, ceil *proc, fr *freeradius) targetSet {
	n := b.o.users
	t := targetSet{
		radotp: &target{key: "radotp", label: "radotp (otp mode)", addr: fmt.Sprintf("127.0.0.1:%d", portBig),
			secret: radotpSecret, mode: "otp", users: n, prefix: "u", pid: big.pid, state: fmt.Sprintf("radotp-%d", n)},
		small: &target{key: "radotp-small", label: "radotp, 1,000-user database", addr: fmt.Sprintf("127.0.0.1:%d", portSmall),
			secret: radotpSecret, mode: "otp", users: smallUsers, prefix: "u", pid: small.pid, state: fmt.Sprintf("radotp-%d", smallUsers)},
		// The ceiling checks no user: a user set of its own, large enough
		// for any rate within a time step.
		ceiling: &target{key: "ceiling", label: "ceiling", addr: fmt.Sprintf("127.0.0.1:%d", portCeiling),
			secret: radotpSecret, mode: "otp", users: 4 * max(n, 1000000), prefix: "c", pid: ceil.pid, state: "ceiling"},
	}
	if fr != nil {
		t.frFiles = &target{key: "fr-files", label: "FreeRADIUS users file", addr: fmt.Sprintf("127.0.0.1:%d", frFilesPort),
			secret: frSecret, mode: "append", users: n, prefix: "u", pid: fr.pid, state: "fr-files"}
		t.frSQL = &target{key: "fr-sqlite", label: "FreeRADIUS SQLite", addr: fmt.Sprintf("127.0.0.1:%d", frSQLPort),
			secret: frSecret, mode: "append", users: n, prefix: "u", pid: fr.pid, state: "fr-sqlite"}
	}
	b.rep.targets = t
	return t
}

// load runs the generator against t with the extra args and records the
// sample.
func (b *bench) load(scenario string, t *target, round int, args ...string) (result, error) {
	if err := b.ctx.Err(); err != nil {
		return result{}, err
	}
	full := append([]string{"load", "--json", "--progress", "0",
		"--addr", t.addr, "--secret", t.secret, "--mode", t.mode,
		"--users", strconv.Itoa(t.users), "--prefix", t.prefix,
		"--pid", strconv.Itoa(t.pid), "--state", b.statePath(t.state), "--edge", edgeGuard}, args...)
	c := exec.CommandContext(b.ctx, b.gen, full...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, b.log
	fmt.Fprintf(b.log, "$ radotp-bench %s\n", strings.Join(full, " "))
	if err := c.Run(); err != nil {
		return result{}, fmt.Errorf("radotp-bench %s: %v", strings.Join(full, " "), err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("radotp-bench output: %v: %s", err, out.Bytes())
	}
	fmt.Fprintf(b.log, "%s", out.Bytes())
	b.rep.samples = append(b.rep.samples, sample{Scenario: scenario, Target: t.key, Round: round, Args: args, Result: r})
	srv := ""
	if r.ServerUsPerRq > 0 {
		srv = fmt.Sprintf(", server %.0f us/req %.0f%% CPU", r.ServerUsPerRq, r.ServerCPUPct)
	}
	b.say("   %-30s %8.0f answers/s  %d accept %d reject %d timeout  p50 %.2f ms p99 %.2f ms%s, generator %.0f%% CPU",
		t.label, r.Rate, r.Accepts, r.Rejects, r.Timeouts, r.P50ms, r.P99ms, srv, r.GenCPUPct)
	return r, nil
}

func (b *bench) closedArgs() []string {
	return []string{"--concurrency", strconv.Itoa(b.o.conc), "--nas", "1", "--sockets", strconv.Itoa(b.o.sockets)}
}

// capacity is scenario (a): each round, the capacity of every target with
// the large user set, then a storm of 1,000 fresh users on each.
func (b *bench) capacity(t targetSet) error {
	order := []*target{t.ceiling, t.radotp, t.frFiles, t.frSQL}
	order = slices.DeleteFunc(order, func(x *target) bool { return x == nil })
	for r := 1; r <= b.o.rounds; r++ {
		b.say("(a) round %d of %d: capacity, closed loop, %d outstanding, %s each", r, b.o.rounds, b.o.conc, b.o.dur)
		for i := range order {
			tg := order[(i+r-1)%len(order)]
			if _, err := b.load("capacity", tg, r, append(b.closedArgs(), "--duration", b.o.dur.String())...); err != nil {
				return err
			}
		}
		b.say("(a) round %d of %d: storms of %d fresh users", r, b.o.rounds, stormSize)
		for _, tg := range []*target{t.small, t.radotp, t.frFiles, t.frSQL} {
			if tg == nil {
				continue
			}
			// Each storm starts on an idle server: a few hundred ms of
			// burst must not pay for the capacity run before it (the
			// writer's checkpoint, garbage collection).
			if _, err := b.load("storm", tg, r, append(b.closedArgs(), "--requests", strconv.Itoa(stormSize), "--settle", "10s")...); err != nil {
				return err
			}
		}
	}
	return nil
}

// capacityOf is the median capacity of t from scenario (a).
func (b *bench) capacityOf(t *target) float64 {
	return median(b.rep.values("capacity", t.key, func(r result) float64 { return r.Rate }))
}

// argon is scenario (b): password + code through radotp's append-mode client,
// against the hash ceiling measured now.
func (b *bench) argon(t targetSet) error {
	hashtime := func() (hashTime, error) {
		var h hashTime
		out, err := exec.CommandContext(b.ctx, b.gen, "hashtime", "--json", "--duration", "3s").Output()
		if err != nil {
			return h, fmt.Errorf("radotp-bench hashtime: %v", err)
		}
		if err := json.Unmarshal(out, &h); err != nil {
			return h, fmt.Errorf("radotp-bench hashtime: %v: %s", err, out)
		}
		b.say("   %.1f ms per check; ceiling %d cores / %.1f ms = %.1f checks/s (all cores at once: %.1f/s)",
			h.SingleMs, h.Cores, h.SingleMs, h.Ceiling, h.Parallel)
		return h, nil
	}
	b.say("(b) argon2id: one check on one core, then on every core")
	h, err := hashtime()
	if err != nil {
		return err
	}
	b.rep.hash = h
	b.say("(b) radotp, password + code (append mode), %s", b.o.argonDur)
	tg := *t.radotp
	tg.mode = "append"
	if _, err = b.load("argon2id", &tg, 1, "--concurrency", "16", "--nas", "1", "--nas-address", "127.0.1.1",
		"--sockets", "2", "--duration", b.o.argonDur.String()); err != nil {
		return err
	}
	// Other work on the machine changes what the cores give: measure
	// again, and report the machine's parallel rate around the run too.
	b.say("(b) argon2id again, after the run")
	h2, err := hashtime()
	if err != nil {
		return err
	}
	b.rep.hashAfter = h2
	return nil
}

// halfRate is scenario (e): open loop at half of each server's capacity.
func (b *bench) halfRate(t targetSet) error {
	b.say("(e) latency at half of each server's capacity, open loop, %s", b.o.halfDur)
	for _, tg := range []*target{t.radotp, t.frFiles, t.frSQL} {
		if tg == nil {
			continue
		}
		rate := b.capacityOf(tg) / 2
		if _, err := b.load("half", tg, 1, "--rate", fmt.Sprintf("%.0f", rate), "--nas", "1", "--sockets", strconv.Itoa(b.o.sockets),
			"--duration", b.o.halfDur.String()); err != nil {
			return err
		}
	}
	return nil
}

// loss is scenario (d): 10 % of the datagrams lost each way, NAS-style
// retransmissions after 1-3 s, at half of the capacity.
func (b *bench) loss(t targetSet) error {
	b.say("(d) 10%% loss, retransmits after 1-3 s (up to 3), half capacity, %s", b.o.lossDur)
	for _, tg := range []*target{t.radotp, t.frFiles} {
		if tg == nil {
			continue
		}
		rate := b.capacityOf(tg) / 2
		nas := "4" // radotp: four NAS addresses, one client 127.0.0.0/8
		if tg != t.radotp {
			nas = "1" // FreeRADIUS knows 127.0.0.1 only
		}
		socks := int(math.Ceil(rate*0.5/200)) + 4 // IDs for ~0.5 s of requests per NAS
		if _, err := b.load("loss", tg, 1, "--rate", fmt.Sprintf("%.0f", rate), "--nas", nas, "--sockets", strconv.Itoa(socks),
			"--loss", "0.1", "--timeout", "1s", "--timeout-max", "3s", "--retries", "3", "--duration", b.o.lossDur.String()); err != nil {
			return err
		}
	}
	return nil
}

// overload is scenario (c): ten times radotp's capacity, open loop, for
// overDur; the NAS gives up after 1 s, no retransmits. FreeRADIUS (users
// file) gets the same offered load for comparison.
func (b *bench) overload(t targetSet) error {
	rate := 10 * b.capacityOf(t.radotp)
	b.rep.overloadRate = rate
	// 256 IDs per socket; each ID is held up to 1 s by a dropped request.
	socks := int(math.Ceil(rate*1.2/256)) + 8
	nas := (socks + 15) / 16
	b.say("(c) overload: %.0f requests/s offered (10x radotp's capacity), %s, %d sockets", rate, b.o.overDur, nas*16)
	b.rep.alive = map[string]bool{}
	for _, tg := range []*target{t.radotp, t.frFiles} {
		if tg == nil {
			continue
		}
		n, s := nas, 16 // radotp: many NAS addresses
		if tg != t.radotp {
			n, s = 1, 16*nas // FreeRADIUS knows 127.0.0.1 only
		}
		// Ten times the rate needs ten times the users per time step: a
		// user whose request went unanswered tries again.
		if _, err := b.load("overload", tg, 1, "--rate", fmt.Sprintf("%.0f", rate), "--nas", strconv.Itoa(n), "--sockets", strconv.Itoa(s),
			"--timeout", "1s", "--rcvbuf", strconv.Itoa(1<<20), "--reuse-unanswered", "--duration", b.o.overDur.String()); err != nil {
			return err
		}
		b.rep.alive[tg.key] = syscall.Kill(tg.pid, 0) == nil
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
