package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system) that process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(u+s) * clockTick, nil
}

// waitIdle waits until process pid uses less than 5 % of a CPU over 300 ms,
// or for at most max. It returns an error only if pid cannot be read.
func waitIdle(ctx context.Context, pid int, max time.Duration) error {
	const window = 300 * time.Millisecond
	deadline := time.Now().Add(max)
	for {
		before, err := procCPU(pid)
		if err != nil {
			return err
		}
		select {
		case <-time.After(window):
		case <-ctx.Done():
			return ctx.Err()
		}
		after, err := procCPU(pid)
		if err != nil {
			return err
		}
		if after-before < window/20 || time.Now().After(deadline) {
			return nil
		}
	}
}

// procMem returns the resident set size and its peak (VmRSS, VmHWM) of pid.
func procMem(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range bytes.Lines(b) {
		var p *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			p = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			p = &peak
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			*p = kb << 10
		}
	}
	return rss, peak, nil
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineTicks are the machine's CPU times so far, all CPUs together, from
// the first line of /proc/stat (in USER_HZ ticks).
type machineTicks struct{ busy, iowait, total int64 }

// machineCPU reads the machine's CPU times.
func machineCPU() (machineTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest time is counted in user already). Busy is
// all but idle and iowait.
func parseProcStat(b []byte) (machineTicks, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return machineTicks{}, fmt.Errorf("/proc/stat: no cpu line")
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(string(f[1+i]), 10, 64)
		if err != nil {
			return machineTicks{}, fmt.Errorf("/proc/stat: %w", err)
		}
		v[i] = n
	}
	var t machineTicks
	for i, n := range v {
		t.total += n
		switch i {
		case 3: // idle
		case 4:
			t.iowait += n
		default:
			t.busy += n
		}
	}
	return t, nil
}

// pct returns the busy and iowait shares of the time between t0 and t1, in
// percent of all CPUs.
func (t1 machineTicks) pct(t0 machineTicks) (busy, iowait float64) {
	d := t1.total - t0.total
	if d <= 0 {
		return 0, 0
	}
	return 100 * float64(t1.busy-t0.busy) / float64(d), 100 * float64(t1.iowait-t0.iowait) / float64(d)
}
