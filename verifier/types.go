package verifier

import (
	"context"
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
	Name      string
	Mode      Mode
	Separator string // ModeAppend: "" = the last digits characters are the code
	Policy    Policy // PolicyDefault = the global default
}

// Attempt is one Access-Request, decoded.
type Attempt struct {
	User           string
	Password       []byte // User-Password, decrypted, padding removed
	State          []byte // State attribute, if any
	Client         Client
	CallingStation string
	Source         netip.AddrPort
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
	// greater than its last_step) and resets the user's failure count, in one
	// transaction. It reports false if the step was not greater (a replay).
	CommitSuccess(ctx context.Context, userID, tokenID, step int64, drift int) (bool, error)
	// ResetFailures sets the user's failure count to 0.
	ResetFailures(ctx context.Context, userID int64) error
	// RecordFailure counts one failure; when the count reaches max the user is
	// locked until now+lockFor and the count restarts. It reports whether this
	// failure locked the user.
	RecordFailure(ctx context.Context, userID int64, max int, lockFor time.Duration) (bool, error)
}
