package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpinners: --awake's spinners run under SCHED_IDLE, use the CPU, and
// are gone after stop.
func TestSpinners(t *testing.T) {
	stop, err := startSpinners(2)
	if err != nil {
		t.Fatal(err)
	}
	pids := spinnerPIDs(t)
	defer stop()
	if len(pids) != 2 {
		t.Fatalf("%d spinners running, want 2", len(pids))
	}
	for _, pid := range pids {
		var policy int
		var cpu0 int64
		deadline := time.Now().Add(5 * time.Second)
		for {
			var err error
			policy, cpu0, err = schedStat(pid)
			if err != nil {
				t.Fatal(err)
			}
			if policy == 5 || time.Now().After(deadline) { // chrt has exec'd sh
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if policy != 5 {
			t.Fatalf("spinner %d: scheduling policy %d, want 5 (SCHED_IDLE)", pid, policy)
		}
		// It gets a CPU whenever one is idle: within seconds even while
		// other test packages keep both busy.
		cpu1 := cpu0
		for deadline := time.Now().Add(10 * time.Second); cpu1 <= cpu0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			if _, cpu1, err = schedStat(pid); err != nil {
				t.Fatal(err)
			}
		}
		if cpu1 <= cpu0 {
			t.Errorf("spinner %d used no CPU in 10 s (%d ticks)", pid, cpu0)
		}
	}
	stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("spinner %d still exists after stop (kill 0: %v)", pid, err)
		}
	}
}

// spinnerPIDs lists this process's children that run the spinner's loop.
func spinnerPIDs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := statFields(stat)
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) { // field 4, ppid
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("while :; do :; done")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// schedStat returns the scheduling policy (5 is SCHED_IDLE) and the CPU
// time in ticks (utime+stime) of process pid, from /proc/PID/stat.
func schedStat(pid int) (policy int, ticks int64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := statFields(stat) // f[0] is field 3
	if len(f) < 39 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	policy, err3 := strconv.Atoi(f[38])         // field 41
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return policy, ut + st, nil
}

// statFields splits /proc/PID/stat after the command name, which is in
// parentheses and may hold spaces: the first field returned is field 3.
func statFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}
