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
	defer stop()
	// Each is chrt until it runs sh: /proc may show it mid-exec, with an
	// empty command line, for a moment.
	pids := spinnerPIDs(t)
	for deadline := time.Now().Add(5 * time.Second); len(pids) != 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		pids = spinnerPIDs(t)
	}
	if len(pids) != 2 {
		t.Fatalf("%d spinners running, want 2", len(pids))
	}
	// chrt sets the policy, then runs sh; a SCHED_IDLE task gets a CPU
	// whenever one is idle, and a sliver of one even while other test
	// packages keep both busy: schedstat counts its nanoseconds on a CPU.
	cpu0 := make([]int64, len(pids))
	for i, pid := range pids {
		_, cpu0[i] = schedStat(t, pid)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, pid := range pids {
		policy, cpu := schedStat(t, pid)
		for (policy != 5 || cpu <= cpu0[i]) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			policy, cpu = schedStat(t, pid)
		}
		if policy != 5 {
			t.Errorf("spinner %d: scheduling policy %d, want 5 (SCHED_IDLE)", pid, policy)
		}
		if cpu <= cpu0[i] {
			t.Errorf("spinner %d ran for no time in 20 s (%d ns on a CPU)", pid, cpu)
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

// schedStat returns the scheduling policy of process pid (field 41 of
// /proc/PID/stat; 5 is SCHED_IDLE) and the nanoseconds it has run on a CPU
// (the first field of /proc/PID/schedstat).
func schedStat(t *testing.T, pid int) (policy int, ns int64) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := statFields(stat) // f[0] is field 3
	if len(f) < 39 {
		t.Fatalf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	if policy, err = strconv.Atoi(f[38]); err != nil {
		t.Fatalf("/proc/%d/stat: policy: %v", pid, err)
	}
	ss, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		t.Fatal(err)
	}
	sf := strings.Fields(string(ss))
	if len(sf) == 0 {
		t.Fatalf("/proc/%d/schedstat is empty", pid)
	}
	if ns, err = strconv.ParseInt(sf[0], 10, 64); err != nil {
		t.Fatalf("/proc/%d/schedstat: %v", pid, err)
	}
	return policy, ns
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
