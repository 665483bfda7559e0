package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// kindError is an error with its own message that still matches a sentinel
// (ErrNotFound, ErrExists) with errors.Is, without repeating its text.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func userNotFound(name string) error {
	return &kindError{fmt.Sprintf("store: user %q not found", name), ErrNotFound}
}

var policies = map[string]bool{"": true, "required": true, "optional": true, "disabled": true}

// CreateUser adds a user with u's name, email, password hash and policy, and
// returns it with its ID and CreatedAt. u.Tokens is ignored (see AddToken).
// ErrExists if the name is taken.
func (db *DB) CreateUser(ctx context.Context, u User) (User, error) {
	if u.Name == "" {
		return User{}, errors.New("store: create user: empty name")
	}
	if !policies[u.Policy] {
		return User{}, fmt.Errorf("store: create user %q: unknown policy %q", u.Name, u.Policy)
	}
	created := toMS(db.now())
	res, err := db.w.ExecContext(ctx,
		`INSERT INTO users (name, email, password_hash, policy, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.Name, u.Email, u.PasswordHash, u.Policy, created)
	if isUnique(err) {
		return User{}, &kindError{fmt.Sprintf("store: user %q already exists", u.Name), ErrExists}
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user %q: %w", u.Name, err)
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return User{}, fmt.Errorf("store: create user %q: %w", u.Name, err)
	}
	u.Failures, u.LockedUntil, u.Tokens = 0, time.Time{}, nil
	u.CreatedAt = fromMS(created)
	return u, nil
}

// SetPassword replaces the user's password hash ("" removes the local
// password). ErrNotFound if there is no such user.
func (db *DB) SetPassword(ctx context.Context, name, hash string) error {
	return db.updateUser(ctx, name, "set password", `UPDATE users SET password_hash = ? WHERE name = ? COLLATE NOCASE`, hash, name)
}

// SetPolicy sets the user's policy: "" (the default), "required", "optional"
// or "disabled". ErrNotFound if there is no such user.
func (db *DB) SetPolicy(ctx context.Context, name, policy string) error {
	if !policies[policy] {
		return fmt.Errorf("store: set policy of %q: unknown policy %q", name, policy)
	}
	return db.updateUser(ctx, name, "set policy", `UPDATE users SET policy = ? WHERE name = ? COLLATE NOCASE`, policy, name)
}

// SetEmail changes the user's e-mail address. ErrNotFound if there is no
// such user.
func (db *DB) SetEmail(ctx context.Context, name, email string) error {
	return db.updateUser(ctx, name, "set e-mail", `UPDATE users SET email = ? WHERE name = ? COLLATE NOCASE`, email, name)
}

// UnlockUser clears the user's failure count and lock.
// ErrNotFound if there is no such user.
func (db *DB) UnlockUser(ctx context.Context, name string) error {
	return db.updateUser(ctx, name, "unlock", `UPDATE users SET failures = 0, locked_until = 0 WHERE name = ? COLLATE NOCASE`, name)
}

// DeleteUser deletes the user and, by cascade, its tokens.
// ErrNotFound if there is no such user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	return db.updateUser(ctx, name, "delete", `DELETE FROM users WHERE name = ? COLLATE NOCASE`, name)
}

// updateUser runs a statement that changes the named user's row, and turns
// "no row changed" into ErrNotFound.
func (db *DB) updateUser(ctx context.Context, name, what, query string, args ...any) error {
	res, err := db.w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: %s user %q: %w", what, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s user %q: %w", what, name, err)
	}
	if n == 0 {
		return userNotFound(name)
	}
	return nil
}

// AddToken seals t.Secret and adds the token to the user. The row is
// inserted first, then its secret is sealed with the row's id, in one
// transaction. It returns t with ID, UserID and CreatedAt set.
// ErrNotFound if there is no such user.
func (db *DB) AddToken(ctx context.Context, userName string, t Token) (Token, error) {
	if err := checkToken(t); err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	t.CreatedAt = fromMS(toMS(db.now()))

	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ? COLLATE NOCASE`, userName).Scan(&t.UserID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Token{}, userNotFound(userName)
		}
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO tokens
		(user_id, secret, algorithm, digits, period, state, created_at, active_at, last_step, drift)
		VALUES (?, x'', ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.UserID, t.Algorithm, t.Digits, t.Period, t.State, toMS(t.CreatedAt), toMS(t.ActiveAt), t.LastStep, t.Drift)
	if err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET secret = ? WHERE id = ?`, db.seal(t.Secret, tokenAD(t.ID)), t.ID); err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	if err := tx.Commit(); err != nil {
		return Token{}, fmt.Errorf("store: add token for %q: %w", userName, err)
	}
	return t, nil
}

// checkToken allows only the parameters radotp can verify.
func checkToken(t Token) error {
	switch {
	case len(t.Secret) == 0:
		return errors.New("empty secret")
	case t.Algorithm != "SHA1" && t.Algorithm != "SHA256" && t.Algorithm != "SHA512":
		return fmt.Errorf("algorithm %q is not SHA1, SHA256 or SHA512", t.Algorithm)
	case t.Digits != 6 && t.Digits != 8:
		return fmt.Errorf("digits %d is not 6 or 8", t.Digits)
	case t.Period <= 0:
		return fmt.Errorf("period %d is not positive", t.Period)
	case t.State != TokenPending && t.State != TokenActive:
		return fmt.Errorf("state %q is not %q or %q", t.State, TokenPending, TokenActive)
	}
	return nil
}

// DeleteTokens removes all of the user's tokens and returns how many there
// were. ErrNotFound if there is no such user.
func (db *DB) DeleteTokens(ctx context.Context, userName string) (int, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: delete tokens of %q: %w", userName, err)
	}
	defer tx.Rollback()
	var userID int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ? COLLATE NOCASE`, userName).Scan(&userID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, userNotFound(userName)
		}
		return 0, fmt.Errorf("store: delete tokens of %q: %w", userName, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("store: delete tokens of %q: %w", userName, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete tokens of %q: %w", userName, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: delete tokens of %q: %w", userName, err)
	}
	return int(n), nil
}

// GetUser returns the user with its tokens, oldest first, without secrets.
// ErrNotFound if there is no such user.
func (db *DB) GetUser(ctx context.Context, name string) (User, error) {
	return db.user(ctx, name, false)
}

// UserAuth returns the user with its tokens, oldest first, secrets unsealed.
// A secret that does not unseal is an error, never skipped: a token with a
// damaged secret must not silently turn a user into one without a token.
// ErrNotFound if there is no such user.
func (db *DB) UserAuth(ctx context.Context, name string) (User, error) {
	return db.user(ctx, name, true)
}

const (
	userColumns  = `id, name, email, password_hash, policy, failures, locked_until, created_at`
	tokenColumns = `id, user_id, secret, algorithm, digits, period, state, created_at, active_at, last_step, drift, last_request, last_accept_at`
)

// userQuery reads a user and its tokens in one statement (one snapshot, one
// step per token): the hot path reads each user once per request, and a
// BEGIN/ROLLBACK pair around two queries cost three times as much. A user
// without tokens comes back as one row whose token id is 0 (ids start at 1).
const userQuery = `SELECT u.id, u.name, u.email, u.password_hash, u.policy, u.failures, u.locked_until, u.created_at,
		COALESCE(t.id, 0), COALESCE(t.secret, x''), COALESCE(t.algorithm, ''), COALESCE(t.digits, 0),
		COALESCE(t.period, 0), COALESCE(t.state, ''), COALESCE(t.created_at, 0), COALESCE(t.active_at, 0),
		COALESCE(t.last_step, 0), COALESCE(t.drift, 0), COALESCE(t.last_request, x''), COALESCE(t.last_accept_at, 0)
	FROM users u LEFT JOIN tokens t ON t.user_id = u.id
	WHERE u.name = ? COLLATE NOCASE
	ORDER BY t.id`

func (db *DB) user(ctx context.Context, name string, secrets bool) (User, error) {
	// A caller that has given up gets no read. The read itself runs without
	// the caller's cancellation: the driver would start a goroutine per
	// query to watch it, and a read in WAL mode does not wait for locks (it
	// can wait for one of the pool's connections, each held for a read).
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("store: get user %q: %w", name, err)
	}
	rows, err := db.r.QueryContext(context.WithoutCancel(ctx), userQuery, name)
	if err != nil {
		return User{}, fmt.Errorf("store: get user %q: %w", name, err)
	}
	defer rows.Close()
	var u User
	found := false
	for rows.Next() {
		var t Token
		var sealed []byte
		var locked, created, tCreated, tActive, tAccepted int64
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Policy, &u.Failures, &locked, &created,
			&t.ID, &sealed, &t.Algorithm, &t.Digits, &t.Period, &t.State, &tCreated, &tActive,
			&t.LastStep, &t.Drift, &t.LastRequest, &tAccepted); err != nil {
			return User{}, fmt.Errorf("store: get user %q: %w", name, err)
		}
		found = true
		u.LockedUntil, u.CreatedAt = fromMS(locked), fromMS(created)
		if t.ID == 0 {
			continue // no tokens
		}
		t.UserID = u.ID
		t.CreatedAt, t.ActiveAt, t.LastAcceptAt = fromMS(tCreated), fromMS(tActive), fromMS(tAccepted)
		if secrets {
			secret, err := db.unseal(sealed, tokenAD(t.ID))
			if err != nil {
				return User{}, fmt.Errorf("store: get user %q: unseal secret of token %d: %w", name, t.ID, err)
			}
			t.Secret = secret
		}
		u.Tokens = append(u.Tokens, t)
	}
	if err := rows.Err(); err != nil {
		return User{}, fmt.Errorf("store: get user %q: %w", name, err)
	}
	if !found {
		return User{}, userNotFound(name)
	}
	return u, nil
}

// ListUsers returns all users by name, each with its tokens (no secrets).
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	var users []User
	byID := make(map[int64]int) // user id -> index in users
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		byID[u.ID] = len(users)
		users = append(users, u)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}

	rows, err = tx.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	err = db.scanTokens(rows, false, func(t Token) {
		if i, ok := byID[t.UserID]; ok { // always, in one snapshot with foreign keys
			users[i].Tokens = append(users[i].Tokens, t)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return users, nil
}

// TokenCounts counts tokens by state at now: pending, activating (active
// from a later instant on) and active.
func (db *DB) TokenCounts(ctx context.Context, now time.Time) (pending, activating, active int, err error) {
	ms := toMS(now)
	// Pending: a secret made but not confirmed yet, which is what an open
	// enrollment link holds (and a token row in state pending, if any).
	err = db.r.QueryRowContext(ctx, `SELECT
			COUNT(*) FILTER (WHERE state = ?) +
				(SELECT COUNT(*) FROM enroll_links WHERE used_at = 0 AND voided_at = 0 AND expires_at > ?),
			COUNT(*) FILTER (WHERE state = ? AND active_at > ?),
			COUNT(*) FILTER (WHERE state = ? AND active_at <= ?)
		FROM tokens`,
		TokenPending, ms, TokenActive, ms, TokenActive, ms).Scan(&pending, &activating, &active)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("store: count tokens: %w", err)
	}
	return pending, activating, active, nil
}

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var locked, created int64
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Policy, &u.Failures, &locked, &created)
	u.LockedUntil, u.CreatedAt = fromMS(locked), fromMS(created)
	return u, err
}

// scanTokens calls add for each token in rows, unsealing secrets if asked,
// and closes rows.
func (db *DB) scanTokens(rows *sql.Rows, secrets bool, add func(Token)) error {
	defer rows.Close()
	for rows.Next() {
		var t Token
		var sealed []byte
		var created, active, accepted int64
		if err := rows.Scan(&t.ID, &t.UserID, &sealed, &t.Algorithm, &t.Digits, &t.Period, &t.State,
			&created, &active, &t.LastStep, &t.Drift, &t.LastRequest, &accepted); err != nil {
			return err
		}
		t.CreatedAt, t.ActiveAt, t.LastAcceptAt = fromMS(created), fromMS(active), fromMS(accepted)
		if secrets {
			secret, err := db.unseal(sealed, tokenAD(t.ID))
			if err != nil {
				return fmt.Errorf("unseal secret of token %d: %w", t.ID, err)
			}
			t.Secret = secret
		}
		add(t)
	}
	return rows.Err()
}
