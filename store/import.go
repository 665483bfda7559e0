package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
)

// ImportUser is one user for Import: the user's Name, Email, PasswordHash
// and Policy, and at most one token.
type ImportUser struct {
	User  User
	Token *Token // Secret, Algorithm, Digits, Period, State, ActiveAt; nil: no token
}

// ImportOptions tunes Import.
type ImportOptions struct {
	// BatchSize is the number of users per transaction. 0: 10000.
	BatchSize int
	// Progress, if set, is called after each committed transaction with the
	// number of users imported so far.
	Progress func(imported int)
}

// ImportError is the error of an Import that stopped at one user.
type ImportError struct {
	Index int    // the user's position in the sequence, from 0
	Name  string // the user's name
	Err   error  // matches ErrExists if the name is taken
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("store: import user %q (#%d): %v", e.Name, e.Index+1, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

const defaultImportBatch = 10000

// Import creates many users, each with at most one token, fast: a
// transaction per batch of users, prepared statements, ids assigned up front
// so that each token's secret is sealed before its row is written (no
// second UPDATE, as AddToken needs).
//
// It is all or nothing: on the first error (from users, a user that is not
// valid, a name already taken, or the database) it deletes again the users
// it committed, and returns the error, an *ImportError when one user is to
// blame. Only if that clean-up fails too (the error then says so) are some
// users left behind. While it runs, other processes see the batches appear;
// the running server can log in an imported user as soon as the batch is
// committed. It returns the number of users imported.
func (db *DB) Import(ctx context.Context, users iter.Seq2[ImportUser, error], opts ImportOptions) (int, error) {
	batch := opts.BatchSize
	if batch <= 0 {
		batch = defaultImportBatch
	}
	im := &importer{db: db, created: toMS(db.now())}
	buf := make([]ImportUser, 0, min(batch, 1<<16))
	index := 0 // of buf[0]
	var err error
	for u, yerr := range users {
		if yerr != nil {
			err = fmt.Errorf("store: import: %w", yerr)
			break
		}
		if verr := checkImportUser(u); verr != nil {
			err = &ImportError{Index: index + len(buf), Name: u.User.Name, Err: verr}
			break
		}
		buf = append(buf, u)
		if len(buf) == batch {
			if err = im.commit(ctx, buf, index); err != nil {
				break
			}
			index += len(buf)
			clear(buf)
			buf = buf[:0]
			if opts.Progress != nil {
				opts.Progress(im.n)
			}
		}
	}
	if err == nil && len(buf) > 0 {
		if err = im.commit(ctx, buf, index); err == nil && opts.Progress != nil {
			opts.Progress(im.n)
		}
	}
	if err != nil {
		if uerr := im.undo(); uerr != nil {
			return 0, fmt.Errorf("%w; and removing the %d users imported before it failed too, so they stay: %v", err, im.n, uerr)
		}
		return 0, err
	}
	return im.n, nil
}

func checkImportUser(u ImportUser) error {
	if u.User.Name == "" {
		return errors.New("empty name")
	}
	if !policies[u.User.Policy] {
		return fmt.Errorf("unknown policy %q", u.User.Policy)
	}
	if u.Token != nil {
		return checkToken(*u.Token)
	}
	return nil
}

// importer is one Import in progress.
type importer struct {
	db      *DB
	created int64
	n       int
	ranges  [][2]int64 // user ids committed, for undo
}

// nextID returns the first id that the AUTOINCREMENT table may use: above
// both its largest id ever handed out and its largest id now.
func nextID(tx *sql.Tx, table string) (int64, error) {
	var seq, maxID int64
	err := tx.QueryRow(`SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), COALESCE((SELECT MAX(id) FROM `+table+`), 0)`,
		table).Scan(&seq, &maxID)
	return max(seq, maxID) + 1, err
}

// commit writes users (the first of them at position index) in one
// transaction.
func (im *importer) commit(ctx context.Context, users []ImportUser, index int) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	db := im.db
	// Background: a cancellable context costs the driver a goroutine per
	// statement; ctx is checked between batches.
	bg := context.Background()
	tx, err := db.w.BeginTx(bg, nil)
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	defer tx.Rollback()
	// BEGIN IMMEDIATE holds the write lock: these ids stay ours.
	uid, err := nextID(tx, "users")
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	tid, err := nextID(tx, "tokens")
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	insUser, err := tx.PrepareContext(bg, `INSERT INTO users (id, name, email, password_hash, policy, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	defer insUser.Close()
	insToken, err := tx.PrepareContext(bg, `INSERT INTO tokens
		(id, user_id, secret, algorithm, digits, period, state, created_at, active_at, last_step, drift)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: import: %w", err)
	}
	defer insToken.Close()

	first := uid
	for i := range users {
		u := &users[i].User
		if _, err := insUser.ExecContext(bg, uid, u.Name, u.Email, u.PasswordHash, u.Policy, im.created); err != nil {
			if isUnique(err) {
				err = ErrExists
			}
			return &ImportError{Index: index + i, Name: u.Name, Err: err}
		}
		if t := users[i].Token; t != nil {
			sealed := db.seal(t.Secret, tokenAD(tid))
			if _, err := insToken.ExecContext(bg, tid, uid, sealed, t.Algorithm, t.Digits, t.Period, t.State,
				im.created, toMS(t.ActiveAt), t.LastStep, t.Drift); err != nil {
				return &ImportError{Index: index + i, Name: u.Name, Err: err}
			}
			tid++
		}
		uid++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: import: commit: %w", err)
	}
	im.n += len(users)
	im.ranges = append(im.ranges, [2]int64{first, uid - 1})
	return nil
}

// undo deletes the users committed so far (their tokens go with them).
func (im *importer) undo() error {
	if len(im.ranges) == 0 {
		return nil
	}
	tx, err := im.db.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range im.ranges {
		if _, err := tx.Exec(`DELETE FROM users WHERE id BETWEEN ? AND ?`, r[0], r[1]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ExistingNames returns the users whose names equal some of names without
// regard to ASCII case, spelled as stored.
func (db *DB) ExistingNames(ctx context.Context, names []string) ([]string, error) {
	var found []string
	const chunk = 500 // well below SQLite's limit on parameters
	for len(names) > 0 {
		part := names[:min(chunk, len(names))]
		names = names[len(part):]
		q := make([]byte, 0, 64+2*len(part))
		// Names are unique without regard to ASCII case (migration 0004):
		// "ALICE" in the file is taken if alice exists.
		q = append(q, `SELECT name FROM users WHERE name COLLATE NOCASE IN (?`...)
		args := make([]any, len(part))
		for i, n := range part {
			if i > 0 {
				q = append(q, ",?"...)
			}
			args[i] = n
		}
		q = append(q, ')')
		rows, err := db.r.QueryContext(ctx, string(q), args...)
		if err != nil {
			return nil, fmt.Errorf("store: look up user names: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: look up user names: %w", err)
			}
			found = append(found, n)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: look up user names: %w", err)
		}
	}
	return found, nil
}
