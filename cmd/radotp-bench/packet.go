package main

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// RADIUS codes and attributes the generator uses (RFC 2865, RFC 3579).
const (
	codeAccessRequest   = 1
	codeAccessAccept    = 2
	codeAccessReject    = 3
	codeAccessChallenge = 11

	attrUserName             = 1
	attrUserPassword         = 2
	attrNASIPAddress         = 4
	attrNASIdentifier        = 32
	attrMessageAuthenticator = 80

	maxRequest = 256 // the generator's requests are far smaller
)

// encoder builds Access-Requests and checks replies. It keeps its hashes
// between packets, so it allocates nothing; one per goroutine.
type encoder struct {
	secret []byte
	ma     bool
	md5    hash.Hash
	hmac   hash.Hash
	sum    [md5.Size]byte
}

func newEncoder(secret []byte, ma bool) *encoder {
	return &encoder{secret: secret, ma: ma, md5: md5.New(), hmac: hmac.New(md5.New, secret)}
}

// request writes into buf (len maxRequest) an Access-Request with a
// Message-Authenticator first (if enabled), User-Name, User-Password (the
// password hidden as RFC 2865 5.2 says), NAS-IP-Address and NAS-Identifier,
// and returns the packet.
func (e *encoder) request(buf []byte, id byte, auth *[16]byte, user, pw []byte, nasIP [4]byte, nasID []byte) []byte {
	b := buf[:20]
	b[0], b[1] = codeAccessRequest, id
	copy(b[4:20], auth[:])
	maOff := 0
	if e.ma {
		b = append(b, attrMessageAuthenticator, 18)
		maOff = len(b)
		b = append(b, make([]byte, 16)...)
	}
	b = append(b, attrUserName, byte(2+len(user)))
	b = append(b, user...)

	plen := max(16, (len(pw)+15)/16*16)
	b = append(b, attrUserPassword, byte(2+plen))
	off := len(b)
	b = append(b, pw...)
	for len(b) < off+plen {
		b = append(b, 0)
	}
	prev := auth[:]
	for i := off; i < off+plen; i += 16 {
		e.md5.Reset()
		e.md5.Write(e.secret)
		e.md5.Write(prev)
		x := e.md5.Sum(e.sum[:0])
		for j := range 16 {
			b[i+j] ^= x[j]
		}
		prev = b[i : i+16]
	}

	b = append(b, attrNASIPAddress, 6)
	b = append(b, nasIP[:]...)
	if len(nasID) > 0 {
		b = append(b, attrNASIdentifier, byte(2+len(nasID)))
		b = append(b, nasID...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if maOff != 0 {
		e.hmac.Reset()
		e.hmac.Write(b)
		copy(b[maOff:maOff+16], e.hmac.Sum(e.sum[:0]))
	}
	return b
}

// validReply reports whether r is a well-formed reply to the request with
// authenticator auth: its Length fits and its Response Authenticator is
// MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
func (e *encoder) validReply(r []byte, auth *[16]byte) bool {
	if len(r) < 20 {
		return false
	}
	n := int(binary.BigEndian.Uint16(r[2:4]))
	if n < 20 || n > len(r) {
		return false
	}
	e.md5.Reset()
	e.md5.Write(r[:4])
	e.md5.Write(auth[:])
	e.md5.Write(r[20:n])
	e.md5.Write(e.secret)
	return subtle.ConstantTimeCompare(e.md5.Sum(e.sum[:0]), r[4:20]) == 1
}

// totp computes RFC 6238 codes (HMAC-SHA1, 6 digits) without allocating:
// HMAC by hand with a reused SHA1 state. One per goroutine.
type totp struct {
	h    hash.Hash
	pad  [64]byte
	in   [sha1.Size]byte
	out  [sha1.Size]byte
	code [6]byte
}

func newTOTP() *totp { return &totp{h: sha1.New()} }

// hmac returns HMAC-SHA1(key, msg) (key at most 64 bytes), valid until the
// next call.
func (t *totp) hmac(key, msg []byte) []byte {
	for i := range t.pad {
		t.pad[i] = 0x36
	}
	for i, k := range key {
		t.pad[i] ^= k
	}
	t.h.Reset()
	t.h.Write(t.pad[:])
	t.h.Write(msg)
	inner := t.h.Sum(t.in[:0])
	for i := range t.pad {
		t.pad[i] ^= 0x36 ^ 0x5c
	}
	t.h.Reset()
	t.h.Write(t.pad[:])
	t.h.Write(inner)
	return t.h.Sum(t.out[:0])
}

// at returns the 6-digit code of key at time step step, valid until the
// next call.
func (t *totp) at(key []byte, step int64) []byte {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	s := t.hmac(key, msg[:])
	off := s[len(s)-1] & 0x0f
	v := binary.BigEndian.Uint32(s[off:off+4]) & 0x7fffffff
	for i := 5; i >= 0; i-- {
		t.code[i] = byte('0' + v%10)
		v /= 10
	}
	return t.code[:]
}
