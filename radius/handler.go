package radius

import (
	"context"

	"github.com/radotp/radotp/verifier"
)

// Verifier decides one Access-Request.
//
// The Server calls Verify once for each new request that passed its checks:
// never for a retransmission answered from the reply cache, never for
// Status-Server, and never for a request without User-Password. Calls come
// from the Server's worker goroutines, concurrently, so Verify must be safe
// for concurrent use. ctx carries the Server's RequestTimeout and is also
// cancelled when a Shutdown gives up waiting; Verify should return soon after
// ctx is done.
//
// A returned Decision is the answer. The Server turns it into an
// Access-Accept, Access-Reject or Access-Challenge, stores it in the reply
// cache and sends it; retransmissions of the request get the same bytes
// without another call. A wrong password or code, an unknown, disabled or
// locked-out user are Decisions (Outcome Reject with a Reason), not errors.
// The Reason goes to the log only: every Access-Reject looks the same on the
// wire. A Challenge needs a State of 1 to 253 bytes, which the NAS sends back
// with the next request; its Prompt becomes Reply-Message. A Challenge
// without a valid State is answered with a Reject. An Outcome the Server does
// not know is a Reject.
//
// A non-nil error means "could not decide safely" (storage unavailable,
// timeout, cancelled): the Decision is ignored, no reply is sent, the drop is
// counted as storage_error and the request is forgotten by the reply cache,
// so that the NAS's retransmission is verified again. An error is never a way
// to say Reject. Because a retransmission is decided afresh, Verify should
// return an error only when nothing it committed would make the retry decide
// differently.
//
// a.Password and a.State belong to the Server and are valid only during the
// call: the Server overwrites the password afterwards. Verify must not keep
// them, and must not put the password or the code into its error. The
// Decision's State and Prompt are copied before Verify's result is used.
type Verifier interface {
	Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error)
}

// VerifierFunc lets an ordinary function be a Verifier.
type VerifierFunc func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error)

// Verify calls f(ctx, a).
func (f VerifierFunc) Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
	return f(ctx, a)
}

// Observer is told the fate of every packet the Server reads: exactly one of
// Dropped, Answered or Resent per datagram. Answered and Resent are reported
// when the reply is ready, just before it is written, so that a NAS that got
// a reply finds it counted; a write that fails is logged as well. It is where
// metrics live; the
// Server has no metric code of its own.
//
// The methods are called from the read loops and the workers concurrently, on
// the request path: they must be safe for concurrent use and must not block.
type Observer interface {
	// Dropped reports a datagram that got no reply; reason is one of
	// DropReasons.
	Dropped(reason string)
	// Answered reports a reply sent for a new request; kind is one of
	// AnswerKinds.
	Answered(kind string)
	// Resent reports a retransmission answered from the reply cache, with
	// the same bytes as the first reply. It is not also reported to Answered.
	Resent()
}

// Drop reasons, the values passed to Observer.Dropped.
const (
	DropUnknownClient               = "unknown_client"                // source matches no client
	DropMalformed                   = "malformed"                     // failed the sanity checks
	DropMissingMessageAuthenticator = "missing_message_authenticator" // required but absent
	DropBadMessageAuthenticator     = "bad_message_authenticator"     // present but wrong
	DropDuplicateInFlight           = "duplicate_in_flight"           // retransmission of a request being worked on
	DropOverload                    = "overload"                      // reply cache or queue full
	DropStorageError                = "storage_error"                 // the Verifier returned an error
	DropFirstFactorUnavailable      = "first_factor_unavailable"      // the password backend (LDAP, upstream RADIUS) did not answer
)

// DropReasons is the fixed set of drop reasons, for pre-initialised metrics.
var DropReasons = []string{
	DropUnknownClient, DropMalformed, DropMissingMessageAuthenticator,
	DropBadMessageAuthenticator, DropDuplicateInFlight, DropOverload,
	DropStorageError,
	DropFirstFactorUnavailable,
}

// Answer kinds, the values passed to Observer.Answered.
const (
	AnswerAccessAccept    = "access_accept"
	AnswerAccessReject    = "access_reject"
	AnswerAccessChallenge = "access_challenge"
	AnswerStatusServer    = "status_server" // the Access-Accept answering a Status-Server
)

// AnswerKinds is the fixed set of answer kinds, for pre-initialised metrics.
var AnswerKinds = []string{
	AnswerAccessAccept, AnswerAccessReject, AnswerAccessChallenge, AnswerStatusServer,
}

type nopObserver struct{}

func (nopObserver) Dropped(string)  {}
func (nopObserver) Answered(string) {}
func (nopObserver) Resent()         {}
