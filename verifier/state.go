package verifier

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Challenge State is stateless: the server keeps nothing between the two
// Access-Requests of a challenge. The State attribute carries what the
// second request needs, signed with a server key (HMAC-SHA256), so any node
// that has the key can finish a challenge another node started.
//
//	version(1) kind(1) expiry(8, unix seconds) nonce(16) mac(32)
//
// The MAC covers those fields, the user and client names and the last used
// step of the user's token, so a State is useless for another user, at
// another client, after its expiry, or once a code was accepted with it.

const (
	stateVersion = 1
	stateNonce   = 16
	stateLen     = 1 + 1 + 8 + stateNonce + sha256.Size
)

// Kinds of challenge.
const (
	stateCode   byte = 1 // the first factor passed; the answer is the code
	stateNotice byte = 2 // the user has no token; the answer is rejected
)

func stateMAC(key []byte, body []byte, user, client string, ref int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("radotp challenge state\x00"))
	m.Write(body)
	var r [8]byte
	binary.BigEndian.PutUint64(r[:], uint64(ref))
	m.Write(r[:])
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	binary.BigEndian.PutUint16(n[:], uint16(len(client)))
	m.Write(n[:])
	m.Write([]byte(client))
	return m.Sum(nil)
}

// newState returns a signed State for user at client, valid until expiry.
// ref is the last used step of the user's token when the State is made: a
// State stops working once a code was accepted, so it answers one login.
func newState(key []byte, kind byte, user, client string, expiry time.Time, ref int64) []byte {
	b := make([]byte, 0, stateLen)
	b = append(b, stateVersion, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(expiry.Unix()))
	var nonce [stateNonce]byte
	rand.Read(nonce[:])
	b = append(b, nonce[:]...)
	return append(b, stateMAC(key, b, user, client, ref)...)
}

// openState checks a State for user at client at time now and returns its
// kind; ok is false for anything forged, expired, or for someone else.
func openState(key, st []byte, user, client string, now time.Time, ref int64) (kind byte, ok bool) {
	if len(st) != stateLen || st[0] != stateVersion {
		return 0, false
	}
	body, mac := st[:stateLen-sha256.Size], st[stateLen-sha256.Size:]
	if !hmac.Equal(mac, stateMAC(key, body, user, client, ref)) {
		return 0, false
	}
	if now.Unix() >= int64(binary.BigEndian.Uint64(body[2:10])) {
		return 0, false
	}
	return body[1], true
}
