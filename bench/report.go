package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// hashTime is `radotp-bench hashtime --json`.
type hashTime struct {
	Cores    int     `json:"cores"`
	SingleMs float64 `json:"single_ms"`
	Ceiling  float64 `json:"ceiling_per_s"`
	Parallel float64 `json:"parallel_per_s"`
}

type report struct {
	opts         options
	machine      string
	start, end   time.Time
	load0, load1 string
	importTimes  [][2]float64 // users, seconds
	targets      targetSet
	samples      []sample
	hash         hashTime // before the argon2id run
	hashAfter    hashTime // after it
	overloadRate float64
	alive        map[string]bool // after the overload
}

// values returns f of every sample of scenario and target, in round order.
func (r *report) values(scenario, target string, f func(result) float64) []float64 {
	var v []float64
	for _, s := range r.samples {
		if s.Scenario == scenario && s.Target == target {
			v = append(v, f(s.Result))
		}
	}
	return v
}

func (r *report) one(scenario, target string) (result, bool) {
	for _, s := range r.samples {
		if s.Scenario == scenario && s.Target == target {
			return s.Result, true
		}
	}
	return result{}, false
}

// ratios returns, round by round, f(a)/f(b) for scenario.
func (r *report) ratios(scenario, a, b string, f func(result) float64) []float64 {
	byRound := map[int][2]float64{}
	for _, s := range r.samples {
		if s.Scenario != scenario {
			continue
		}
		x := byRound[s.Round]
		switch s.Target {
		case a:
			x[0] = f(s.Result)
		case b:
			x[1] = f(s.Result)
		}
		byRound[s.Round] = x
	}
	var v []float64
	for round := 1; round <= len(byRound); round++ {
		if x, ok := byRound[round]; ok && x[0] > 0 && x[1] > 0 {
			v = append(v, x[0]/x[1])
		}
	}
	return v
}

// spread formats the median of v and, for more than one value, its range.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	m := fmt.Sprintf(format, median(v))
	if len(v) == 1 {
		return m
	}
	return fmt.Sprintf("%s [%s–%s]", m, fmt.Sprintf(format, slices.Min(v)), fmt.Sprintf(format, slices.Max(v)))
}

func rate(r result) float64     { return r.Rate }
func srvUs(r result) float64    { return r.ServerUsPerRq }
func srvPc(r result) float64    { return r.ServerCPUPct }
func genPc(r result) float64    { return r.GenCPUPct }
func genUs(r result) float64    { return r.GenUsPerRq }
func machBusy(r result) float64 { return r.MachineBusyPct }
func machWait(r result) float64 { return r.MachineIOWaitPct }
func p99(r result) float64      { return r.P99ms }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func (r *report) render() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	t := r.targets
	o := r.opts
	p("# radotp benchmark, %s\n\n", r.start.UTC().Format("2006-01-02 15:04 MST"))
	p("- machine: %s; load average at start %s, at end %s (other work on the machine shares the cores)\n", r.machine, r.load0, r.load1)
	if o.awake {
		p("- --awake: every CPU had a SCHED_IDLE busy loop during the runs, so no server paid for waking idle vCPUs; the machine-busy rows count the loops too, and they add %d to the load average at the end\n", runtime.NumCPU())
	}
	p("- run: %s, %d round(s) of the capacity runs (%s each) and storms; cells give the median [min–max] over the rounds, ratios are taken round by round\n",
		r.end.Sub(r.start).Round(time.Second), o.rounds, o.dur)
	p("- generator: radotp-bench, one NAS (127.0.0.1) x %d sockets, closed loop with %d requests outstanding, Message-Authenticator on every request, every request a fresh valid code of a user not sent in the same 30 s step\n",
		o.sockets, o.conc)
	p("- radotp: mode otp (the code only), replay state committed with synchronous=FULL before the reply, Message-Authenticator required, audit trail on, log level warn\n")
	p("- FreeRADIUS 3.2 (Debian) with rlm_totp: password + code against Cleartext-Password + TOTP-Secret, no replay check, from the users file or SQLite (rlm_sql_sqlite)\n")
	for _, it := range r.importTimes {
		p("- `radotp user import` of %.0f users (pre-hashed passwords, one key each): %.1f s\n", it[0], it[1])
	}
	p("\n## (a) Code only, %d users: capacity\n\n", o.users)
	cols := []*target{t.radotp, t.frFiles, t.frSQL, t.ceiling}
	cols = slices.DeleteFunc(cols, func(x *target) bool { return x == nil })
	p("| | ")
	for _, c := range cols {
		p("%s | ", c.label)
	}
	p("\n|---|")
	for range cols {
		p("---|")
	}
	p("\n")
	row := func(name, scenario, format string, f func(result) float64) {
		p("| %s | ", name)
		for _, c := range cols {
			p("%s | ", spread(r.values(scenario, c.key, f), format))
		}
		p("\n")
	}
	row("answers/s", "capacity", "%.0f", rate)
	row("server CPU µs/request", "capacity", "%.0f", srvUs)
	row("server CPU %", "capacity", "%.0f", srvPc)
	row("p99 latency ms", "capacity", "%.1f", p99)
	row("generator CPU %", "capacity", "%.0f", genPc)
	row("generator CPU µs/request", "capacity", "%.1f", genUs)
	row("machine busy % (both CPUs, every process)", "capacity", "%.0f", machBusy)
	row("machine waiting for the disk %", "capacity", "%.0f", machWait)
	p("\n| ratio (req/s, same round) | median [range] | target | |\n|---|---|---|---|\n")
	if t.frSQL != nil {
		v := r.ratios("capacity", "radotp", "fr-sqlite", rate)
		p("| radotp / FreeRADIUS SQLite | %s | ≥ 2 | %s |\n", spread(v, "%.2f"), verdict(median(v) >= 2))
		v = r.ratios("capacity", "radotp", "fr-files", rate)
		p("| radotp / FreeRADIUS users file | %s | ≥ 1 | %s |\n", spread(v, "%.2f"), verdict(median(v) >= 1))
		v = r.ratios("capacity", "fr-sqlite", "radotp", srvUs)
		p("| server CPU per request, FreeRADIUS SQLite / radotp | %s | | |\n", spread(v, "%.2f"))
		v = r.ratios("capacity", "fr-files", "radotp", srvUs)
		p("| server CPU per request, FreeRADIUS users file / radotp | %s | | |\n", spread(v, "%.2f"))
	}
	p("| radotp / ceiling | %s | | |\n", spread(r.ratios("capacity", "radotp", "ceiling", rate), "%.2f"))

	p("\n## (a) Login storm: %d fresh users at once (%d outstanding)\n\n", stormSize, o.conc)
	p("| | answers/s | server CPU µs/request | p99 ms |\n|---|---|---|---|\n")
	for _, c := range []*target{t.small, t.radotp, t.frFiles, t.frSQL} {
		if c == nil {
			continue
		}
		label := c.label
		if c == t.radotp {
			label = fmt.Sprintf("radotp, %d-user database", o.users)
		}
		p("| %s | %s | %s | %s |\n", label, spread(r.values("storm", c.key, rate), "%.0f"),
			spread(r.values("storm", c.key, srvUs), "%.0f"), spread(r.values("storm", c.key, p99), "%.1f"))
	}
	v := r.ratios("storm", "radotp", "radotp-small", rate)
	p("\n%d users vs 1,000 users (radotp, answers/s, same round): %s — target ≥ 0.90: %s; server CPU per request, 1,000 / %d users: %s\n",
		o.users, spread(v, "%.2f"), verdict(median(v) >= 0.9), o.users, spread(r.ratios("storm", "radotp-small", "radotp", srvUs), "%.2f"))
	p("\n(With a replay guard, 1,000 users allow 1,000 fresh logins per 30 s step, so the 1,000-user figure is a storm of all of them, not a sustained rate.)\n")

	p("\n## (b) Password + code, argon2id (m=19 MiB, t=2, p=1)\n\n")
	if a, ok := r.one("argon2id", "radotp"); ok {
		ratio := a.Rate / r.hash.Ceiling
		par := (r.hash.Parallel + r.hashAfter.Parallel) / 2
		p("| one hash, one core (before / after) | ceiling = %d cores / one hash | all cores hashing at once (before / after) | radotp answers/s | radotp / ceiling | radotp / all cores at once | target |\n|---|---|---|---|---|---|---|\n", r.hash.Cores)
		p("| %.1f / %.1f ms | %.1f /s | %.1f / %.1f /s | %.1f (%d accept, %d reject; server %.0f%% CPU) | %.2f | %.2f | ≥ 0.90 of the ceiling: %s |\n",
			r.hash.SingleMs, r.hashAfter.SingleMs, r.hash.Ceiling, r.hash.Parallel, r.hashAfter.Parallel,
			a.Rate, a.Accepts, a.Rejects, a.ServerCPUPct, ratio, a.Rate/par, verdict(ratio >= 0.9))
	}

	p("\n## (c) Overload: %.0f requests/s offered (10x radotp's capacity), %s, NAS timeout 1 s, no retransmits\n\n", r.overloadRate, o.overDur)
	p("| | sent/s | goodput (Accepts/s) | goodput / capacity | answered late (after 1 s) | unanswered | Rejects | not sent (no free ID) | server CPU %% | generator CPU %% | peak RSS MiB | alive after |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range []*target{t.radotp, t.frFiles} {
		if c == nil {
			continue
		}
		x, ok := r.one("overload", c.key)
		if !ok {
			continue
		}
		capa := median(r.values("capacity", c.key, rate))
		p("| %s | %.0f | %.0f | %.2f | %d | %d | %d | %d | %.0f | %.0f | %.0f | %v |\n", c.label, float64(x.Sent)/x.WindowS, x.AcceptRate, x.AcceptRate/capa,
			x.Stray, x.Timeouts, x.Rejects, x.NotSentNoID, x.ServerCPUPct, x.GenCPUPct, x.ServerHWMMiB, r.alive[c.key])
	}
	if x, ok := r.one("overload", "radotp"); ok {
		capa := median(r.values("capacity", "radotp", rate))
		p("\nradotp: goodput ≥ 90 %% of capacity: %s; peak RSS < 256 MiB: %s; no crash: %s. (FreeRADIUS's RSS holds its million-entry users file.)\n",
			verdict(x.AcceptRate >= 0.9*capa), verdict(x.ServerHWMMiB < 256), verdict(r.alive["radotp"]))
	}

	p("\n## (d) 10 %% loss each way, NAS retransmits after 1–3 s (up to 3), at half capacity, %s\n\n", o.lossDur)
	p("| | offered/s | retransmits | Rejects | Rejects after a retransmit | unanswered after 3 retransmits | target |\n|---|---|---|---|---|---|---|\n")
	for _, c := range []*target{t.radotp, t.frFiles} {
		if c == nil {
			continue
		}
		if x, ok := r.one("loss", c.key); ok {
			p("| %s | %.0f | %d | %d | %d | %d | 0 Rejects after a retransmit: %s |\n", c.label, x.OfferedRate, x.Retransmits, x.Rejects,
				x.RejectsAfterRetransmit, x.Timeouts, verdict(x.RejectsAfterRetransmit == 0))
		}
	}

	p("\n## (e) Latency at half of each server's capacity (open loop, %s)\n\n", o.halfDur)
	p("| | offered/s | p50 ms | p99 ms | max ms | unanswered | Rejects | target |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range []*target{t.radotp, t.frFiles, t.frSQL} {
		if c == nil {
			continue
		}
		if x, ok := r.one("half", c.key); ok {
			tgt := ""
			if c == t.radotp {
				tgt = "p99 < 5 ms: " + verdict(x.P99ms < 5)
			}
			p("| %s | %.0f | %.2f | %.2f | %.1f | %d | %d | %s |\n", c.label, x.OfferedRate, x.P50ms, x.P99ms, x.MaxMs, x.Timeouts, x.Rejects, tgt)
		}
	}
	p("\nRaw results: the .json file beside this one; commands and generator output: bench.log in the work directory.\n")
	return w.String()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
