package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Enrollment link purposes: how the link came to the user.
const (
	LinkAdmin  = "admin"  // radotp enroll link
	LinkInvite = "invite" // radotp user add --invite
	LinkLogin  = "login"  // self-service first login on the enrollment site
	LinkNeed   = "need"   // mailed when a user without a token passed the first factor
	LinkAPI    = "api"    // POST /api/enroll-links (identity portal)
)

// Reasons a link was voided.
const (
	VoidAttempts = "attempts" // too many wrong codes
	VoidReplaced = "replaced" // the user enrolled with another link
)

// ErrLinkRecent is returned by CreateEnrollLink when the user already got a
// link of the same purpose after the given instant.
var ErrLinkRecent = errors.New("store: an enrollment link was made recently")

// ErrLinkClosed is returned when an enrollment link can no longer be used:
// it was confirmed, voided or has expired.
var ErrLinkClosed = errors.New("store: enrollment link is used, void or expired")

// EnrollLink is one one-time enrollment link and the pending secret bound
// to it.
type EnrollLink struct {
	ID         int64
	UserID     int64
	UserName   string // filled by EnrollLinkByToken
	UserEmail  string // filled by EnrollLinkByToken
	Purpose    string // LinkAdmin, LinkInvite, ...
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // confirmed with a right code; zero = not yet
	VoidedAt   time.Time // zero = not voided
	VoidReason string    // VoidAttempts or VoidReplaced
	Attempts   int       // wrong codes so far
	Secret     []byte    // pending raw key; filled by EnrollLinkByToken while the link is open
	Algorithm  string    // SHA1, SHA256, SHA512
	Digits     int       // 6 or 8
	Period     int       // seconds
	TokenID    int64     // the token its confirmation created; 0 = none
}

// Usable reports whether the link can still be confirmed at now.
func (l EnrollLink) Usable(now time.Time) bool {
	return l.UsedAt.IsZero() && l.VoidedAt.IsZero() && now.Before(l.ExpiresAt)
}

// linkTokenBytes is the size of a link token: 256 random bits.
const linkTokenBytes = 32

// newLinkToken returns a new random link token as it goes into URLs
// (base64url, 43 characters) and the hash that is stored.
func newLinkToken() (string, []byte) {
	b := make([]byte, linkTokenBytes)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, linkHash(tok)
}

// linkHash is what the database keeps of a link token.
func linkHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ValidLinkToken reports whether s has the form of a link token, so that
// handlers can reject junk without a database lookup.
func ValidLinkToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(linkTokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// linkAD is the associated data that binds a pending secret to its link row.
func linkAD(linkID int64) []byte {
	return strconv.AppendInt([]byte("radotp enroll link "), linkID, 10)
}

// CreateEnrollLink makes a link for the named user with l's purpose, expiry
// and pending secret (l.Secret, sealed with the link's id), and returns it
// with the link token, which is stored only as a hash and cannot be had again.
//
// If notSince is not zero and the user already got a link of the same
// purpose after it, no link is made and the error is ErrLinkRecent; the check
// and the insert are one statement. ErrNotFound if there is no such user.
func (db *DB) CreateEnrollLink(ctx context.Context, userName string, l EnrollLink, notSince time.Time) (EnrollLink, string, error) {
	wrap := func(err error) error { return fmt.Errorf("store: create enrollment link for %q: %w", userName, err) }
	if err := checkToken(Token{Secret: l.Secret, Algorithm: l.Algorithm, Digits: l.Digits, Period: l.Period, State: TokenPending}); err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	if l.Purpose == "" {
		return EnrollLink{}, "", wrap(errors.New("no purpose"))
	}
	now := db.now()
	if !l.ExpiresAt.After(now) {
		return EnrollLink{}, "", wrap(errors.New("expiry is not in the future"))
	}
	l.CreatedAt = fromMS(toMS(now))
	l.ExpiresAt = fromMS(toMS(l.ExpiresAt))
	l.UsedAt, l.VoidedAt, l.VoidReason, l.Attempts, l.TokenID = time.Time{}, time.Time{}, "", 0, 0
	token, hash := newLinkToken()

	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	defer tx.Rollback()
	var email string
	if err := tx.QueryRowContext(ctx, `SELECT id, email FROM users WHERE name = ? COLLATE NOCASE`, userName).Scan(&l.UserID, &email); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return EnrollLink{}, "", userNotFound(userName)
		}
		return EnrollLink{}, "", wrap(err)
	}
	since := int64(math.MaxInt64) // no link was made after this: none blocks
	if !notSince.IsZero() {
		since = toMS(notSince)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO enroll_links
		(user_id, token_hash, purpose, created_at, expires_at, secret, algorithm, digits, period)
		SELECT ?, ?, ?, ?, ?, x'', ?, ?, ?
		WHERE NOT EXISTS (SELECT 1 FROM enroll_links WHERE user_id = ? AND purpose = ? AND created_at > ?)`,
		l.UserID, hash, l.Purpose, toMS(l.CreatedAt), toMS(l.ExpiresAt), l.Algorithm, l.Digits, l.Period,
		l.UserID, l.Purpose, since)
	if err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return EnrollLink{}, "", wrap(err)
	} else if n == 0 {
		return EnrollLink{}, "", ErrLinkRecent
	}
	if l.ID, err = res.LastInsertId(); err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enroll_links SET secret = ? WHERE id = ?`, db.seal(l.Secret, linkAD(l.ID)), l.ID); err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return EnrollLink{}, "", wrap(err)
	}
	l.UserName, l.UserEmail = userName, email
	return l, token, nil
}

const linkColumns = `l.id, l.user_id, u.name, u.email, l.purpose, l.created_at, l.expires_at, l.used_at,
	l.voided_at, l.void_reason, l.attempts, l.secret, l.algorithm, l.digits, l.period, l.token_id`

// EnrollLinkByToken returns the link whose token is token, with its user's
// name and e-mail address and, while it is open, its pending secret
// unsealed. Closed and expired links are returned too (with no secret), so
// that the caller can say why a link no longer works. ErrNotFound if no link
// has this token.
func (db *DB) EnrollLinkByToken(ctx context.Context, token string) (EnrollLink, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+linkColumns+`
		FROM enroll_links l JOIN users u ON u.id = l.user_id WHERE l.token_hash = ?`, linkHash(token))
	var l EnrollLink
	var sealed []byte
	var created, expires, used, voided int64
	err := row.Scan(&l.ID, &l.UserID, &l.UserName, &l.UserEmail, &l.Purpose, &created, &expires, &used,
		&voided, &l.VoidReason, &l.Attempts, &sealed, &l.Algorithm, &l.Digits, &l.Period, &l.TokenID)
	if errors.Is(err, sql.ErrNoRows) {
		return EnrollLink{}, &kindError{"store: enrollment link not found", ErrNotFound}
	}
	if err != nil {
		return EnrollLink{}, fmt.Errorf("store: get enrollment link: %w", err)
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt, l.VoidedAt = fromMS(created), fromMS(expires), fromMS(used), fromMS(voided)
	if l.UsedAt.IsZero() && l.VoidedAt.IsZero() && len(sealed) > 0 {
		if l.Secret, err = db.unseal(sealed, linkAD(l.ID)); err != nil {
			return EnrollLink{}, fmt.Errorf("store: unseal secret of enrollment link %d: %w", l.ID, err)
		}
	}
	return l, nil
}

// EnrollBadCode counts one wrong code for the open link. The wrong code
// that brings the count to max voids the link (and clears its secret). It
// returns the count and whether the link is now void, from one conditional
// UPDATE. ErrLinkClosed if the link was already used or void.
func (db *DB) EnrollBadCode(ctx context.Context, linkID int64, max int) (attempts int, voided bool, err error) {
	now := toMS(db.now())
	var voidedAt int64
	err = db.w.QueryRowContext(ctx, `UPDATE enroll_links SET
			attempts    = attempts + 1,
			voided_at   = CASE WHEN attempts + 1 >= ?1 THEN ?2 ELSE 0 END,
			void_reason = CASE WHEN attempts + 1 >= ?1 THEN ?3 ELSE '' END,
			secret      = CASE WHEN attempts + 1 >= ?1 THEN x'' ELSE secret END
		WHERE id = ?4 AND used_at = 0 AND voided_at = 0
		RETURNING attempts, voided_at`,
		max, now, VoidAttempts, linkID).Scan(&attempts, &voidedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, ErrLinkClosed
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: count wrong code of enrollment link %d: %w", linkID, err)
	}
	return attempts, voidedAt != 0, nil
}

// ConfirmEnrollLink closes the open link and adds its pending secret to the
// link's user as an active token, usable from activeAt, whose last used step
// is lastStep (the step of the confirming code, which so cannot log in).
// The user's other open links are voided (VoidReplaced), in the same
// transaction. The link is closed by one conditional UPDATE: of two
// concurrent confirmations one gets ErrLinkClosed, as does an expired link.
func (db *DB) ConfirmEnrollLink(ctx context.Context, linkID int64, activeAt time.Time, lastStep int64) (Token, error) {
	wrap := func(err error) error { return fmt.Errorf("store: confirm enrollment link %d: %w", linkID, err) }
	now := toMS(db.now())
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return Token{}, wrap(err)
	}
	defer tx.Rollback()

	var t Token
	var sealed []byte
	err = tx.QueryRowContext(ctx, `UPDATE enroll_links SET used_at = ?1
		WHERE id = ?2 AND used_at = 0 AND voided_at = 0 AND expires_at > ?1
		RETURNING user_id, secret, algorithm, digits, period`, now, linkID).
		Scan(&t.UserID, &sealed, &t.Algorithm, &t.Digits, &t.Period)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrLinkClosed
	}
	if err != nil {
		return Token{}, wrap(err)
	}
	secret, err := db.unseal(sealed, linkAD(linkID))
	if err != nil {
		return Token{}, wrap(fmt.Errorf("unseal pending secret: %w", err))
	}
	defer clear(secret)
	t.State, t.CreatedAt, t.ActiveAt, t.LastStep = TokenActive, fromMS(now), fromMS(toMS(activeAt)), lastStep
	res, err := tx.ExecContext(ctx, `INSERT INTO tokens
		(user_id, secret, algorithm, digits, period, state, created_at, active_at, last_step, drift)
		VALUES (?, x'', ?, ?, ?, ?, ?, ?, ?, 0)`,
		t.UserID, t.Algorithm, t.Digits, t.Period, t.State, toMS(t.CreatedAt), toMS(t.ActiveAt), t.LastStep)
	if err != nil {
		return Token{}, wrap(err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Token{}, wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET secret = ? WHERE id = ?`, db.seal(secret, tokenAD(t.ID)), t.ID); err != nil {
		return Token{}, wrap(err)
	}
	// The secret now lives in the token only.
	if _, err := tx.ExecContext(ctx, `UPDATE enroll_links SET secret = x'', token_id = ? WHERE id = ?`, t.ID, linkID); err != nil {
		return Token{}, wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enroll_links SET voided_at = ?, void_reason = ?, secret = x''
		WHERE user_id = ? AND id != ? AND used_at = 0 AND voided_at = 0`, now, VoidReplaced, t.UserID, linkID); err != nil {
		return Token{}, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return Token{}, wrap(err)
	}
	return t, nil
}

// DeleteSuperseded deletes the active tokens that a newer active token has
// replaced at now (the verifier ignores them: the newest token whose
// activation time has come is the only one accepted). userID 0 means every
// user. A token still waiting for its activation time supersedes nothing
// yet, so the older one keeps working until then. It returns how many
// tokens it deleted.
func (db *DB) DeleteSuperseded(ctx context.Context, userID int64, now time.Time) (int, error) {
	ms := toMS(now)
	res, err := db.w.ExecContext(ctx, `DELETE FROM tokens AS t
		WHERE (?1 = 0 OR t.user_id = ?1) AND t.state = ?2 AND t.active_at <= ?3
		AND EXISTS (SELECT 1 FROM tokens n
			WHERE n.user_id = t.user_id AND n.state = ?2 AND n.active_at <= ?3
			AND (n.active_at > t.active_at OR (n.active_at = t.active_at AND n.id > t.id)))`,
		userID, TokenActive, ms)
	if err != nil {
		return 0, fmt.Errorf("store: delete superseded tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete superseded tokens: %w", err)
	}
	return int(n), nil
}

// PruneEnrollLinks clears the pending secrets of links that expired at or
// before now, and deletes links that expired before forgetBefore (until
// then an old link still gets "this link expired" rather than "unknown
// link"). It returns how many links it deleted.
func (db *DB) PruneEnrollLinks(ctx context.Context, now, forgetBefore time.Time) (int, error) {
	if _, err := db.w.ExecContext(ctx, `UPDATE enroll_links SET secret = x'' WHERE expires_at <= ? AND secret != x''`, toMS(now)); err != nil {
		return 0, fmt.Errorf("store: prune enrollment links: %w", err)
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM enroll_links WHERE expires_at < ?`, toMS(forgetBefore))
	if err != nil {
		return 0, fmt.Errorf("store: prune enrollment links: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune enrollment links: %w", err)
	}
	return int(n), nil
}
