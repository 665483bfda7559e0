package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
	"unicode/utf8"
)

// Packet codes and attribute types used here (RFC 2865, RFC 2869, RFC 5997).
const (
	codeAccessRequest   = 1
	codeAccessAccept    = 2
	codeAccessReject    = 3
	codeAccessChallenge = 11
	codeStatusServer    = 12

	attrUserName             = 1
	attrUserPassword         = 2
	attrReplyMessage         = 18
	attrState                = 24
	attrProxyState           = 33
	attrCHAPPassword         = 3
	attrPrompt               = 76 // RFC 2869
	promptNoEcho             = 0
	attrMessageAuthenticator = 80

	headerLen  = 20
	maxPacket  = 4096
	maAttrLen  = 2 + md5.Size
	maxAttrVal = 253
)

// checked is what check learned about a sane packet.
type checked struct {
	pkt         []byte // the packet, cut to its Length field
	maOff       int    // offset of the Message-Authenticator value, 0 if absent
	hasPassword bool
	proxyState  bool // at least one Proxy-State
}

// check applies the sanity checks of the package doc (step 2) to the datagram
// b. It returns a short description of the first problem, or "" and what it
// learned. It never allocates.
func check(b []byte) (checked, string) {
	if len(b) < headerLen {
		return checked{}, "shorter than 20 bytes"
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case n < headerLen:
		return checked{}, "length field below 20"
	case n > maxPacket:
		return checked{}, "length field above 4096"
	case n > len(b):
		return checked{}, "length field longer than the datagram"
	}
	b = b[:n] // RFC 2865 section 3: octets past Length are padding
	if c := b[0]; c != codeAccessRequest && c != codeStatusServer {
		return checked{}, "code is neither Access-Request nor Status-Server"
	}
	res := checked{pkt: b}
	var names, passwords, chaps, states, mas int
	for off := headerLen; off < n; {
		if n-off < 2 {
			return checked{}, "attribute header past the end"
		}
		typ, l := b[off], int(b[off+1])
		if l < 2 {
			return checked{}, "attribute length below 2"
		}
		if off+l > n {
			return checked{}, "attribute past the end"
		}
		switch typ {
		case attrProxyState:
			res.proxyState = true
		case attrUserName:
			names++
		case attrUserPassword:
			passwords++
			if v := l - 2; v < 16 || v > 128 || v%16 != 0 {
				return checked{}, "User-Password length not 16..128 in steps of 16"
			}
		case attrCHAPPassword:
			chaps++
		case attrState:
			states++
		case attrMessageAuthenticator:
			mas++
			if l != maAttrLen {
				return checked{}, "Message-Authenticator length not 16"
			}
			res.maOff = off + 2
		}
		off += l
	}
	switch {
	case names > 1:
		return checked{}, "User-Name more than once"
	case passwords > 1:
		return checked{}, "User-Password more than once"
	case states > 1:
		return checked{}, "State more than once"
	case mas > 1:
		return checked{}, "Message-Authenticator more than once"
	case passwords > 0 && chaps > 0:
		return checked{}, "both User-Password and CHAP-Password (RFC 2865 5.2)"
	}
	res.hasPassword = passwords == 1
	return res, ""
}

// macKey is a client's shared secret made ready for Message-Authenticator
// (HMAC-MD5, RFC 2104): the MD5 states after the inner and the outer padded
// key are computed once per client instead of twice per packet, and MD5
// states come from a pool, so that checking and signing allocate nothing.
type macKey struct {
	secret       []byte
	inner, outer []byte // MD5 states (encoding.BinaryMarshaler) after the padded key
}

func newMACKey(secret []byte) *macKey {
	key := secret
	if len(key) > md5.BlockSize {
		sum := md5.Sum(key)
		key = sum[:]
	}
	var ipad, opad [md5.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	state := func(pad []byte) []byte {
		h := md5.New()
		h.Write(pad)
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic("radius: md5 state: " + err.Error()) // crypto/md5 always can
		}
		return b
	}
	return &macKey{secret: bytes.Clone(secret), inner: state(ipad[:]), outer: state(opad[:])}
}

// md5Scratch is a pooled MD5 with buffers for its input and output: slices
// of local arrays passed to hash.Hash methods would escape to the heap.
type md5Scratch struct {
	h           hash.Hash
	zero, inner [md5.Size]byte
	sum         [md5.Size]byte
}

var md5Pool = sync.Pool{New: func() any { return &md5Scratch{h: md5.New()} }}

// getMD5 returns an MD5 from the pool in an unknown state (restore it, or
// Reset it); md5Pool.Put gives it back.
func getMD5() *md5Scratch { return md5Pool.Get().(*md5Scratch) }

// restore sets h to the saved state b.
func restore(h hash.Hash, b []byte) {
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		panic("radius: md5 state: " + err.Error()) // our own MarshalBinary's output
	}
}

// messageAuthenticator returns the RFC 3579 Message-Authenticator of pkt: the
// HMAC-MD5, keyed with the secret, of pkt with auth in the authenticator
// field and zeros in the Message-Authenticator value at maOff.
func (k *macKey) messageAuthenticator(pkt, auth []byte, maOff int) [md5.Size]byte {
	m := getMD5()
	h := m.h
	restore(h, k.inner)
	h.Write(pkt[:4])
	h.Write(auth)
	h.Write(pkt[headerLen:maOff])
	h.Write(m.zero[:])
	h.Write(pkt[maOff+md5.Size:])
	h.Sum(m.inner[:0])
	restore(h, k.outer)
	h.Write(m.inner[:])
	h.Sum(m.sum[:0])
	sum := m.sum
	md5Pool.Put(m)
	return sum
}

// validMessageAuthenticator reports whether the request's
// Message-Authenticator at maOff is right, in constant time.
func (k *macKey) validMessageAuthenticator(pkt []byte, maOff int) bool {
	want := k.messageAuthenticator(pkt, pkt[4:headerLen], maOff)
	return hmac.Equal(want[:], pkt[maOff:maOff+md5.Size])
}

// reply is the content of an answer, before encoding.
type reply struct {
	code   byte
	state  []byte // Access-Challenge only
	prompt string // Access-Challenge only: Reply-Message
}

// encodedLen returns at least the length of the encoded reply to a request
// carrying proxyStates.
func (r *reply) encodedLen(proxyStates [][]byte) int {
	n := headerLen + maAttrLen
	if len(r.state) > 0 {
		n += 2 + len(r.state)
	}
	// Reply-Message chunks are cut at rune starts, so each but the last
	// holds at least 253-3 bytes.
	const minChunk = maxAttrVal - utf8.UTFMax + 1
	n += len(r.prompt) + 2*((len(r.prompt)+minChunk-1)/minChunk)
	for _, ps := range proxyStates {
		n += 2 + len(ps)
	}
	if r.code == codeAccessChallenge {
		n += 6 // Prompt
	}
	return n
}

// encode builds the reply to the request req (the request's Identifier and
// Request Authenticator are used) signed with secret: the header, the
// Message-Authenticator as the first attribute, State and Reply-Message
// attributes if any, then proxyStates in order. It returns nil if the reply
// would be longer than 4096 bytes or a State is longer than 253 bytes.
func (r *reply) encode(req []byte, key *macKey, proxyStates [][]byte) []byte {
	if len(r.state) > maxAttrVal {
		return nil
	}
	b := make([]byte, headerLen, r.encodedLen(proxyStates))
	b[0] = r.code
	b[1] = req[1]
	copy(b[4:headerLen], req[4:headerLen])
	b = append(b, attrMessageAuthenticator, maAttrLen)
	maOff := len(b)
	b = append(b, make([]byte, md5.Size)...)
	if len(r.state) > 0 {
		b = append(b, attrState, byte(2+len(r.state)))
		b = append(b, r.state...)
	}
	for p := r.prompt; p != ""; {
		chunk := p
		if len(chunk) > maxAttrVal {
			chunk = chunk[:maxAttrVal]
			// Cut at a rune start, so that no attribute holds half a rune;
			// a text without rune starts is cut anywhere.
			for i := maxAttrVal; i > maxAttrVal-utf8.UTFMax; i-- {
				if utf8.RuneStart(p[i]) {
					chunk = p[:i]
					break
				}
			}
		}
		b = append(b, attrReplyMessage, byte(2+len(chunk)))
		b = append(b, chunk...)
		p = p[len(chunk):]
	}
	if r.code == codeAccessChallenge {
		// Prompt = No-Echo (RFC 2869 5.10): the code is typed like a password.
		b = append(b, attrPrompt, 6, 0, 0, 0, promptNoEcho)
	}
	for _, ps := range proxyStates {
		if len(ps) > maxAttrVal {
			return nil
		}
		b = append(b, attrProxyState, byte(2+len(ps)))
		b = append(b, ps...)
	}
	if len(b) > maxPacket {
		return nil
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))

	// RFC 3579 section 3.2: the Message-Authenticator of a reply is computed
	// with the Request Authenticator in the authenticator field, which is
	// still there; then RFC 2865 section 3: the Response Authenticator is
	// MD5(Code|ID|Length|Request Authenticator|Attributes|Secret).
	ma := key.messageAuthenticator(b, b[4:headerLen], maOff)
	copy(b[maOff:], ma[:])
	m := getMD5()
	m.h.Reset()
	m.h.Write(b)
	m.h.Write(key.secret)
	m.h.Sum(b[4:4:headerLen])
	md5Pool.Put(m)
	return b
}
