//go:build linux

package radius

import (
	"encoding/binary"
	"net"
	"syscall"
)

// enableDropCount asks the kernel to attach, to each datagram read from c,
// the number of datagrams it has dropped so far because c's receive buffer
// was full (SO_RXQ_OVFL). It reports whether that worked.
func enableDropCount(c *net.UDPConn) bool {
	return control(c, func(fd int) error {
		return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}) == nil
}

// wordSize is the alignment of control messages (CMSG_ALIGN): a long.
const wordSize = syscall.SizeofCmsghdr - 8

// dropCount finds the SO_RXQ_OVFL counter in the control messages oob of a
// read, without allocating. The kernel sends it only once the socket has
// dropped something.
func dropCount(oob []byte) (uint32, bool) {
	const hdr = syscall.SizeofCmsghdr // Len (word-sized), Level, Type (int32 each)
	for len(oob) >= hdr {
		var l int
		if hdr == 16 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		if l < hdr || l > len(oob) {
			return 0, false
		}
		level := int32(binary.NativeEndian.Uint32(oob[hdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[hdr-4:]))
		if level == syscall.SOL_SOCKET && typ == syscall.SO_RXQ_OVFL && l >= hdr+4 {
			return binary.NativeEndian.Uint32(oob[hdr:]), true
		}
		next := (l + wordSize - 1) &^ (wordSize - 1) // CMSG_ALIGN
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}
