package verifier

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/radotp/radotp/store"
)

// Mode says where a client puts the one-time code.
type Mode string

const (
	// ModeAppend: User-Password is the password followed by the code
	// (the last `digits` characters, or split at the client's separator).
	ModeAppend Mode = "append"
	// ModeOTP: User-Password is the code only; the gateway checked the password.
	ModeOTP Mode = "otp"
	// ModeChallenge: User-Password is the password; when a second factor
	// applies the reply is Access-Challenge and the code comes in a second
	// Access-Request carrying the State.
	ModeChallenge Mode = "challenge"
	// ModeAuto: the password alone → as ModeChallenge; else password+code
	// → as ModeAppend.
	ModeAuto Mode = "auto"
)

// Policy says whether a second factor is asked.
type Policy string

const (
	PolicyDefault  Policy = ""         // inherit from the next level
	PolicyRequired Policy = "required" // a code always; no active token = reject not_enrolled
	PolicyOptional Policy = "optional" // a code when the user has a token
	PolicyDisabled Policy = "disabled" // first factor only
)

// Client is what the verifier needs to know about the NAS that sent a request.
type Client struct {
	Name            string
	Mode            Mode
	Separator       string        // ModeAppend/ModeAuto: "" = the last digits characters are the code
	Policy          Policy        // PolicyDefault = the global default
	ChallengePrompt string        // ModeChallenge/ModeAuto: Reply-Message; "" = "Enter your verification code"
	ChallengeTTL    time.Duration // ModeChallenge/ModeAuto: 0 = 2 minutes
	FirstFactor     FirstFactor   // nil = the verifier's default backend
}

// Attempt is one Access-Request, decoded.
type Attempt struct {
	User           string
	Password       []byte // User-Password, decrypted, padding removed
	State          []byte // State attribute, if any
	Client         Client
	CallingStation string
	Source         netip.AddrPort
	// Request fingerprints the RADIUS request (source, Identifier, Request
	// Authenticator): the same for a NAS's retransmission, different for
	// any new request. nil when unknown.
	Request []byte
}

// Outcome is what the NAS is told.
type Outcome int

const (
	Reject Outcome = iota // the zero value: a Decision nobody filled in rejects
	Accept
	Challenge
)

func (o Outcome) String() string {
	switch o {
	case Accept:
		return "accept"
	case Challenge:
		return "challenge"
	default:
		return "reject"
	}
}

// Reason says why a request was rejected. It goes to logs and metrics only,
// never into the reply.
type Reason string

const (
	ReasonNone         Reason = ""
	ReasonBadPassword  Reason = "bad_password"
	ReasonBadCode      Reason = "bad_code"
	ReasonNotYetActive Reason = "not_yet_active"
	ReasonReplayedCode Reason = "replayed_code"
	ReasonClockSkew    Reason = "clock_skew"
	ReasonLockedOut    Reason = "locked_out"
	ReasonUnknownUser  Reason = "unknown_user"
	ReasonNotEnrolled  Reason = "not_enrolled"
	ReasonBadState     Reason = "bad_state"
	ReasonUserDisabled Reason = "user_disabled"
)

// Reasons is the fixed set of failure reasons, for pre-initialised metrics.
var Reasons = []Reason{
	ReasonBadPassword, ReasonBadCode, ReasonNotYetActive, ReasonReplayedCode,
	ReasonClockSkew, ReasonLockedOut, ReasonUnknownUser, ReasonNotEnrolled,
	ReasonBadState, ReasonUserDisabled,
}

// Decision is the verdict on one Attempt. A wrong code is a Decision, not an error.
type Decision struct {
	Outcome Outcome
	Reason  Reason // set when Outcome == Reject
	Prompt  string // Challenge: Reply-Message shown to the user
	State   []byte // Challenge: State attribute the NAS sends back
}

// Store is what the verifier needs from storage. Every method that writes
// returns only after the write is durably committed. Any error means the
// decision cannot be made safely: the caller drops the request.
type Store interface {
	// UserAuth returns the user with all tokens, secrets unsealed.
	// store.ErrNotFound if there is no such user.
	UserAuth(ctx context.Context, name string) (store.User, error)
	// CommitSuccess records step as used for the token (only if step is
	// greater than its last_step and the user is not locked) and resets the
	// user's failure count, in one transaction. It reports false if the step
	// was not greater (a replay), and false with store.ErrLocked if the user
	// is locked out.
	CommitSuccess(ctx context.Context, userID, tokenID, step int64, drift int) (bool, error)
	// CommitSuccessOf is CommitSuccess that also stores the fingerprint of
	// the request that used the step, and the time (Token.LastRequest,
	// Token.LastAcceptAt).
	CommitSuccessOf(ctx context.Context, userID, tokenID, step int64, drift int, request []byte) (bool, error)
	// ResetFailures sets the user's failure count to 0.
	ResetFailures(ctx context.Context, userID int64) error
	// Touch makes a durable write for the user that changes nothing, so
	// that a right password is answered only when storage takes writes.
	Touch(ctx context.Context, userID int64) error
	// CreateUser creates a user (auto_create_users); store.ErrExists if the
	// name is taken.
	CreateUser(ctx context.Context, u store.User) (store.User, error)
	// RecordFailure counts one failure; when the count reaches max the user is
	// locked until now+lockFor and the count restarts. It reports whether this
	// failure locked the user.
	RecordFailure(ctx context.Context, userID int64, max int, lockFor time.Duration) (bool, error)
}

// ErrFirstFactorUnavailable marks errors of a first-factor backend that could
// not answer (directory down, timeout). The request is dropped (the NAS
// retries or fails over) and never counted towards a lockout.
var ErrFirstFactorUnavailable = errors.New("first factor unavailable")

// FirstFactorResult is a first-factor backend's answer.
type FirstFactorResult struct {
	OK bool // the password is right (and the user may log in at all)
	// Reason, when !OK, is the reject reason: "" means ReasonBadPassword;
	// ReasonUserDisabled for e.g. "not in the required LDAP group".
	Reason Reason
	// Policy, when not PolicyDefault, overrides the user's policy level for
	// this request, e.g. members of an LDAP group exempt from 2FA get
	// PolicyOptional. The client and global levels still apply below it.
	Policy Policy
}

// FirstFactor checks a password where it lives: the local hash, an LDAP
// directory, an upstream RADIUS server.
type FirstFactor interface {
	// Check checks password for the user called name. u is radotp's own
	// record of the user, nil if radotp has none (a backend that needs a
	// local record, like the local hash, then spends the time of a check
	// and reports !OK). A wrong password is a result with OK false and a nil
	// error. An error means no answer could be had; backends wrap
	// ErrFirstFactorUnavailable when the backend is down or timed out.
	Check(ctx context.Context, name string, u *store.User, password []byte) (FirstFactorResult, error)
}

// OneCheckPerRequest is implemented by backends that count failures of their
// own (an LDAP directory or Active Directory with a lockout policy, an
// upstream RADIUS server): the verifier then checks at most one reading of
// User-Password per request, so that one mistyped login never costs the
// user two failures there. In modes auto and append from a trusted network,
// an input that ends in a code's worth of digits is then read as
// password+code only.
type OneCheckPerRequest interface {
	OneCheckPerRequest() bool
}

// FirstFactorFunc adapts a function to FirstFactor.
type FirstFactorFunc func(ctx context.Context, name string, u *store.User, password []byte) (FirstFactorResult, error)

// Check calls f.
func (f FirstFactorFunc) Check(ctx context.Context, name string, u *store.User, password []byte) (FirstFactorResult, error) {
	return f(ctx, name, u, password)
}

// NotEnrolledHook is told when a user whose policy requires a second factor
// but who has no token passed the first factor. It returns a message for the
// user (e.g. "We sent you an enrollment link by e-mail") or "". Enrollment
// uses it to mail a link; it must be quick and must not fail the request.
type NotEnrolledHook func(ctx context.Context, u store.User) string
