// Package firstfactor checks passwords where they already live: an LDAP
// directory or Active Directory (LDAP), an upstream RADIUS server (Radius),
// or nowhere, because the gateway checked them (None). radotp's own hashes
// are verifier.Local. Each backend is a verifier.FirstFactor.
//
// # Contract
//
// A wrong password, an unknown user and a user name that could change the
// meaning of a DN or filter are results (OK false, nil error), which the
// verifier rejects and counts towards the lockout. A user outside a required
// group is found only after a right password: Reason user_disabled, rejected
// and not counted (it was no guess). A backend that cannot answer — connection refused, timeout, TLS
// failure, a service account the directory rejects, an upstream RADIUS server
// that stays silent — returns an error wrapping
// verifier.ErrFirstFactorUnavailable; the request is dropped, the NAS retries
// or fails over, and nobody is locked out because the directory was down.
//
// Every backend honours the context: when it ends, the call returns (with an
// error wrapping both ErrFirstFactorUnavailable and the context's error).
//
// Neither passwords nor user names go into errors; logs name the user only.
package firstfactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// None is the backend for gateways that checked the password themselves: it
// passes every request. The code is still checked by the verifier.
type None struct{}

// Check reports OK.
func (None) Check(context.Context, string, *store.User, []byte) (verifier.FirstFactorResult, error) {
	return verifier.FirstFactorResult{OK: true}, nil
}

// Reasons and policies used by the backends.
var (
	rejected     = verifier.FirstFactorResult{}                                          // wrong password
	unknownUser  = verifier.FirstFactorResult{Reason: verifier.ReasonUnknownUser}        // no such user in the directory
	userDisabled = verifier.FirstFactorResult{Reason: verifier.ReasonUserDisabled}       // not in the required group
	passed       = verifier.FirstFactorResult{OK: true}                                  // right password
	exempt       = verifier.FirstFactorResult{OK: true, Policy: verifier.PolicyOptional} // right password, exempt from 2FA
)

// unavailable wraps err as verifier.ErrFirstFactorUnavailable.
func unavailable(backend string, err error) error {
	return fmt.Errorf("firstfactor: %s: %w: %w", backend, verifier.ErrFirstFactorUnavailable, err)
}

// ctxErr is the error of a call whose context ended.
func ctxErr(ctx context.Context, backend string) error {
	return unavailable(backend, context.Cause(ctx))
}

// holdDown is how long a server that did not answer is tried only after the
// others. It is not excluded: when every server is down, all are tried.
const holdDown = 30 * time.Second

// servers orders a list of servers for failover: in configuration order,
// except that servers that failed in the last holdDown come last.
type servers struct {
	n   int
	now func() time.Time

	mu   sync.Mutex
	down []time.Time // zero: up
}

func newServers(n int) *servers {
	return &servers{n: n, now: time.Now, down: make([]time.Time, n)}
}

// order returns the indexes to try, best first.
func (s *servers) order() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	up := make([]int, 0, s.n)
	var down []int
	for i, t := range s.down {
		if !t.IsZero() && now.Sub(t) < holdDown {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	return append(up, down...)
}

func (s *servers) failed(i int) {
	s.mu.Lock()
	s.down[i] = s.now()
	s.mu.Unlock()
}

func (s *servers) answered(i int) {
	s.mu.Lock()
	s.down[i] = time.Time{}
	s.mu.Unlock()
}

func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}

// errClosed is returned by a backend after Close.
var errClosed = errors.New("backend closed")

// Backends that count failures of their own get one check per request.
var (
	_ verifier.OneCheckPerRequest = (*LDAP)(nil)
	_ verifier.OneCheckPerRequest = (*Radius)(nil)
)
