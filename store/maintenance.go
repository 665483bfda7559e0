package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Ready reports an error unless the database can take a write now: it takes
// the write lock (BEGIN IMMEDIATE) and lets it go without writing.
func (db *DB) Ready(ctx context.Context) error {
	if db.aead == nil {
		return errors.New("store: sealing key not loaded")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s is not writable: %w", db.path, err)
	}
	return tx.Rollback()
}

// Backup writes a consistent copy of the database to path while it is in
// use (VACUUM INTO: one read transaction; writers go on). path must not
// exist; the copy is created mode 0600. The copy's secrets stay sealed: it is
// useless without the key file, which must be backed up apart from it.
func (db *DB) Backup(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: backup to %s: the file exists; choose a new name", path)
	}
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	f.Close()
	conn, err := db.r.Conn(ctx)
	if err == nil {
		// The read pool is query_only; VACUUM INTO writes only the new
		// file, but SQLite counts it as a write, so lift it on this
		// connection for the statement.
		_, err = conn.ExecContext(ctx, `PRAGMA query_only = off`)
		if err == nil {
			_, err = conn.ExecContext(ctx, `VACUUM INTO ?`, path)
		}
		if _, e := conn.ExecContext(context.Background(), `PRAGMA query_only = on`); e != nil {
			// Never hand a writable connection back to the read pool:
			// ErrBadConn makes database/sql throw it away.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("store: backup %s to %s: %w", db.path, path, err)
	}
	return nil
}
