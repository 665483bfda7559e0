// Package password hashes and checks local first-factor passwords.
//
// New hashes are argon2id in PHC string format with the OWASP parameters
// (m=19 MiB, t=2, p=1). bcrypt hashes ($2a$, $2b$, $2y$) are accepted for
// import. Checking runs on a bounded pool (Hasher) so that a login storm never
// runs more hashes at once than there are slots, and argon2id never holds more
// memory than slots × m.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen int
}

// OWASP is the OWASP Password Storage Cheat Sheet's argon2id choice.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Bounds on parameters read from a stored hash, so that a hostile or mistyped
// hash in the database cannot make one check take gigabytes or minutes.
const (
	maxMemory  = 1 << 20 // KiB = 1 GiB
	maxTime    = 32
	maxThreads = 64
)

// ErrUnknownFormat is returned for a hash that is neither argon2id PHC nor bcrypt.
var ErrUnknownFormat = errors.New("password: unknown hash format (want $argon2id$... or bcrypt $2b$...)")

// Hash returns the argon2id PHC string of pw with params p.
func Hash(pw []byte, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether pw matches the PHC or bcrypt string hash. A malformed
// hash is an error, not a mismatch.
func Check(hash string, pw []byte) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, pw)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), pw)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("password: bcrypt: %w", err)
		}
		return true, nil
	}
	return false, ErrUnknownFormat
}

// ValidHash reports an error if hash cannot be checked (for imports).
func ValidHash(hash string) error {
	_, err := Check(hash, nil)
	return err
}

func checkArgon2id(hash string, pw []byte) (bool, error) {
	// $argon2id$v=19$m=19456,t=2,p=1$salt$key
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return false, errors.New("password: argon2id hash: want 5 $-separated fields")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("password: argon2id hash: unsupported version %q", parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("password: argon2id hash: bad parameters %q", parts[3])
	}
	if m < 8 || m > maxMemory || t < 1 || t > maxTime || p < 1 || p > maxThreads {
		return false, fmt.Errorf("password: argon2id hash: parameters %q out of bounds", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errors.New("password: argon2id hash: bad salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("password: argon2id hash: bad key")
	}
	got := argon2.IDKey(pw, salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Hasher checks passwords on a bounded number of slots.
type Hasher struct {
	slots chan struct{}

	dummyOnce sync.Once
	dummy     string
}

// NewHasher returns a Hasher with n slots; n <= 0 means runtime.NumCPU().
func NewHasher(n int) *Hasher {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	return &Hasher{slots: make(chan struct{}, n)}
}

// Check is the package Check, run in a slot. It waits for a slot until ctx is done.
func (h *Hasher) Check(ctx context.Context, hash string, pw []byte) (bool, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	return Check(hash, pw)
}

// Dummy spends the time of one argon2id check on a throwaway hash, so that a
// request for an unknown user costs what one for a known user costs.
func (h *Hasher) Dummy(ctx context.Context, pw []byte) {
	h.dummyOnce.Do(func() {
		d, err := Hash([]byte("radotp dummy password"), OWASP)
		if err == nil {
			h.dummy = d
		}
	})
	if h.dummy != "" {
		_, _ = h.Check(ctx, h.dummy, pw)
	}
}
