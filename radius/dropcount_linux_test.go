package radius

import (
	"encoding/binary"
	"syscall"
	"testing"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	n := syscall.CmsgLen(len(data))
	if syscall.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, uint64(n))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
	binary.NativeEndian.PutUint32(b[syscall.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(b[syscall.SizeofCmsghdr-4:], uint32(typ))
	copy(b[syscall.SizeofCmsghdr:], data)
	return b
}

func TestDropCount(t *testing.T) {
	count := binary.NativeEndian.AppendUint32(nil, 4242)
	other := cmsg(syscall.IPPROTO_IP, syscall.IP_TTL, []byte{64, 0, 0}) // 3 bytes: padded
	for _, tc := range []struct {
		name string
		oob  []byte
		want uint32
		ok   bool
	}{
		{"alone", cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, count), 4242, true},
		{"after another message", append(other, cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, count)...), 4242, true},
		{"none", other, 0, false},
		{"empty", nil, 0, false},
		{"truncated", cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, count)[:10], 0, false},
	} {
		got, ok := dropCount(tc.oob)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
