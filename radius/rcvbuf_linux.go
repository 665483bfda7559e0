//go:build linux

package radius

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// SetReceiveBuffer asks the kernel for a receive buffer of n bytes on conn,
// as SO_RCVBUF does, and returns the size the kernel then reports
// (ReceiveBuffer). Linux doubles the request to leave room for its own
// bookkeeping, so a granted request reports 2n. A process allowed to
// (CAP_NET_ADMIN, root) gets n whatever net.core.rmem_max says
// (SO_RCVBUFFORCE); any other is capped at rmem_max, and then reports less
// than 2n.
func SetReceiveBuffer(conn net.PacketConn, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("receive buffer of %d bytes", n)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("%T has no socket", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
		if errors.Is(serr, syscall.EPERM) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		if serr == nil {
			got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, fmt.Errorf("set receive buffer: %w", err)
	}
	return got, nil
}

// ReceiveBuffer is the receive buffer of conn in bytes as the kernel counts
// it (SO_RCVBUF, bookkeeping included), or 0 if that cannot be read.
func ReceiveBuffer(conn net.PacketConn) int {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var got int
	if rc.Control(func(fd uintptr) {
		got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}) != nil {
		return 0
	}
	return got
}
