package main

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// startSpinners starts n busy loops under the SCHED_IDLE policy (chrt, from
// util-linux), which run only when a CPU would otherwise have nothing to do,
// and returns the function that stops them.
//
// It is for --awake. On a virtual machine without guest halt polling (this
// one boots with haltpoll.guest_halt_poll_ns=0), an idle vCPU halts, and
// every wake-up that reaches it (a datagram, a goroutine or thread made
// runnable) costs an exit to the hypervisor and the latency of coming back.
// A server whose CPUs idle between hand-offs pays that per request; the
// spinners keep the vCPUs running, so the servers are compared without it.
// A SCHED_IDLE task gets next to no CPU while anything else wants it.
func startSpinners(n int) (stop func(), err error) {
	if _, err := exec.LookPath("chrt"); err != nil {
		return nil, errors.New("--awake needs chrt (Debian package util-linux)")
	}
	var procs []*exec.Cmd
	stop = func() {
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		procs = nil
	}
	for range n {
		c := exec.Command("chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // not left behind if bench dies
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("--awake: %w", err)
		}
		procs = append(procs, c)
	}
	return stop, nil
}
