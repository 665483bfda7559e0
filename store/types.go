package store

import (
	"errors"
	"time"
)

// ErrNotFound is returned when a user (or token) does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when creating a user whose name is taken.
var ErrExists = errors.New("store: already exists")

// Token states.
const (
	TokenPending = "pending" // enrolled but not confirmed (enrollment, later)
	TokenActive  = "active"  // confirmed; usable from ActiveAt on
)

// User is one account.
type User struct {
	ID           int64
	Name         string
	Email        string
	PasswordHash string // PHC string ($argon2id$... or $2b$...); "" = no local password
	Policy       string // "", "required", "optional", "disabled"
	Failures     int    // consecutive failures
	LockedUntil  time.Time
	CreatedAt    time.Time
	Tokens       []Token // oldest first
}

// Token is one TOTP token of a user.
type Token struct {
	ID        int64
	UserID    int64
	Secret    []byte // raw key; only filled where the caller needs it (UserAuth)
	Algorithm string // SHA1, SHA256, SHA512
	Digits    int    // 6 or 8
	Period    int    // seconds
	State     string // TokenPending or TokenActive
	CreatedAt time.Time
	ActiveAt  time.Time // usable from this instant
	LastStep  int64     // highest time step ever accepted; 0 = none
	Drift     int       // matched step minus current step at the last success
	// LastRequest fingerprints the request that used LastStep (NAS address
	// and port, Identifier, Request Authenticator); LastAcceptAt is when.
	// They let an identical retransmit after a restart get its Accept again.
	LastRequest  []byte
	LastAcceptAt time.Time
}
