package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	keySize = 32 // AES-256

	// The key check value is this constant sealed with the key.
	keyCheckName  = "key_check" // its row in meta
	keyCheckPlain = "radotp key check v1"
)

// loadKey reads the sealing key and checks it against the database's key
// check value. A new database gets a check value and, if the key file is
// missing, a new key file.
func (db *DB) loadKey(ctx context.Context) error {
	check, err := db.keyCheck(ctx)
	if err != nil {
		return err
	}
	key, err := readKeyFile(db.keyFile, check == nil)
	if errors.Is(err, fs.ErrNotExist) {
		// Creating a new key would only make every sealed secret unreadable.
		return fmt.Errorf("store: key file %s is missing, but database %s was set up with a key; restore the key file", db.keyFile, db.path)
	}
	if err != nil {
		return err
	}
	db.aead, err = newAEAD(key)
	if err == nil {
		// A separate key for signing challenge State, derived so that one key
		// file is all there is to back up and to share between nodes.
		db.stateKey, err = hkdf.Key(sha256.New, key, nil, "radotp challenge state v1", 32)
	}
	clear(key)
	if err != nil {
		return fmt.Errorf("store: key file %s: %w", db.keyFile, err)
	}

	if check == nil {
		// Two processes may set up a new database at once: the first check
		// value stays, and the other process fails the comparison below if
		// its key differs.
		sealed := db.seal([]byte(keyCheckPlain), []byte(keyCheckPlain))
		if _, err := db.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			keyCheckName, sealed); err != nil {
			return fmt.Errorf("store: open %s: store key check: %w", db.path, err)
		}
		if check, err = db.keyCheck(ctx); err != nil {
			return err
		}
	}
	if plain, err := db.unseal(check, []byte(keyCheckPlain)); err != nil || string(plain) != keyCheckPlain {
		return fmt.Errorf("store: key file %s does not match database %s (was it replaced?)", db.keyFile, db.path)
	}
	return nil
}

// keyCheck returns the database's key check value, nil if it has none yet.
func (db *DB) keyCheck(ctx context.Context) ([]byte, error) {
	var check []byte
	err := db.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, keyCheckName).Scan(&check)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: read key check: %w", db.path, err)
	}
	return check, nil
}

// readKeyFile returns the key in the file name. If the file does not exist
// and create is set, it creates the file with a new random key; otherwise
// the error wraps fs.ErrNotExist. Errors never contain key material.
func readKeyFile(name string, create bool) ([]byte, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, cerr := createKeyFile(name)
		if !errors.Is(cerr, fs.ErrExist) {
			return key, cerr
		}
		// Another process created it first: use that one.
		f, err = os.Open(name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", name, unwrapPath(err))
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", name, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: key file %s is not a regular file", name)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: key file %s can be read or written by group or others (mode %#o); run chmod 600 %s", name, perm, name)
	}
	// Base64 of 32 bytes is 44 characters; read a little more to see junk.
	text, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", name, unwrapPath(err))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	clear(text)
	if err != nil || len(key) != keySize {
		clear(key)
		return nil, fmt.Errorf("store: key file %s must hold %d random bytes in base64 on one line", name, keySize)
	}
	return key, nil
}

// createKeyFile writes a new random key to name, which must not exist (an
// existing key is never overwritten: fs.ErrExist). The key is written to a
// temporary file, synced, and then linked into place, so that another process
// starting at the same moment never reads a half-written key: it sees either
// no file or the whole one.
func createKeyFile(name string) ([]byte, error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".radotp-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("store: create key file %s: %w", name, unwrapPath(err))
	}
	defer os.Remove(tmp.Name()) // the temporary name; the key stays under name
	key := make([]byte, keySize)
	rand.Read(key)
	text := base64.StdEncoding.AppendEncode(nil, key)
	text = append(text, '\n')
	_, err = tmp.Write(text)
	clear(text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), name) // fails if name exists: never overwrites
	}
	if errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store: create key file %s: %w", name, unwrapPath(err))
	}
	syncDir(filepath.Dir(name))
	return key, nil
}

// syncDir makes a new directory entry durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ChallengeKey returns the 32-byte key that signs challenge State. It is
// derived (HKDF-SHA256) from the sealing key, so every node that shares the
// key file can finish a challenge that another node started.
func (db *DB) ChallengeKey() []byte { return bytes.Clone(db.stateKey) }

// tokenAD is the associated data that binds a sealed secret to its token row.
func tokenAD(tokenID int64) []byte {
	return strconv.AppendInt([]byte("radotp token "), tokenID, 10)
}

// seal returns nonce || ciphertext of plain.
func (db *DB) seal(plain, ad []byte) []byte {
	ns := db.aead.NonceSize()
	out := make([]byte, ns, ns+len(plain)+db.aead.Overhead())
	rand.Read(out) // a random 96-bit nonce per seal
	return db.aead.Seal(out, out[:ns], plain, ad)
}

// unseal opens a value made by seal with the same associated data.
func (db *DB) unseal(sealed, ad []byte) ([]byte, error) {
	ns := db.aead.NonceSize()
	if len(sealed) < ns+db.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return db.aead.Open(nil, sealed[:ns], sealed[ns:], ad)
}
