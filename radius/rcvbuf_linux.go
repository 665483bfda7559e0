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
	var got int
	err := control(conn, func(fd int) (err error) {
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
		if errors.Is(err, syscall.EPERM) {
			err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		if err == nil {
			got, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set receive buffer: %w", err)
	}
	return got, nil
}

// ReceiveBuffer is the receive buffer of conn in bytes as the kernel counts
// it (SO_RCVBUF, bookkeeping included), or 0 if that cannot be read.
func ReceiveBuffer(conn net.PacketConn) int {
	var got int
	if control(conn, func(fd int) (err error) {
		got, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		return err
	}) != nil {
		return 0
	}
	return got
}

// control runs f on conn's socket and returns f's error, or why it could
// not run.
func control(conn net.PacketConn, f func(fd int) error) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no socket", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
