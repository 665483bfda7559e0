//go:build !linux

package radius

import (
	"fmt"
	"net"
)

// SetReceiveBuffer asks for a receive buffer of n bytes on conn. Outside
// Linux the size granted is not read back: it returns 2n, as Linux would
// report it.
func SetReceiveBuffer(conn net.PacketConn, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("receive buffer of %d bytes", n)
	}
	c, ok := conn.(interface{ SetReadBuffer(int) error })
	if !ok {
		return 0, fmt.Errorf("%T has no receive buffer", conn)
	}
	if err := c.SetReadBuffer(n); err != nil {
		return 0, fmt.Errorf("set receive buffer: %w", err)
	}
	return 2 * n, nil
}

// ReceiveBuffer is not known outside Linux: 0.
func ReceiveBuffer(net.PacketConn) int { return 0 }
