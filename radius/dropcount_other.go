//go:build !linux

package radius

import "net"

// enableDropCount is Linux only (SO_RXQ_OVFL); elsewhere the kernel's drops
// of a full receive buffer are not counted in the metrics.
func enableDropCount(*net.UDPConn) bool { return false }

func dropCount([]byte) (uint32, bool) { return 0, false }
