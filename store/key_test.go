package store

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func writeKeyFile(t *testing.T, name string, key []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func TestKeyFile_Created(t *testing.T) {
	opts := testOptions(t)
	mustOpenOptions(t, opts)

	fi, err := os.Stat(opts.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	text, err := os.ReadFile(opts.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		t.Error("key file does not end with a newline")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(text), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Errorf("key has %d bytes, want 32", len(key))
	}
	if bytes.Equal(key, make([]byte, 32)) {
		t.Error("key is all zeros")
	}
}

func TestKeyFile_ExistingIsUsed(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	key := randomBytes(32)
	writeKeyFile(t, opts.KeyFile, key, 0o600)
	before, _ := os.ReadFile(opts.KeyFile)

	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, db, "alice")
	tok := mustAddToken(t, db, "alice")
	db.Close()

	after, _ := os.ReadFile(opts.KeyFile)
	if !bytes.Equal(before, after) {
		t.Error("Open rewrote an existing key file")
	}
	// Sealed with that key: it opens the secret outside the package too.
	var sealed []byte
	db = mustOpenOptions(t, opts)
	if err := db.r.QueryRow(`SELECT secret FROM tokens WHERE id = ?`, tok.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := aead.Open(nil, sealed[:12], sealed[12:], []byte("radotp token "+strconv.FormatInt(tok.ID, 10)))
	if err != nil {
		t.Fatalf("secret does not open with the key file's key and the documented associated data: %v", err)
	}
	if !bytes.Equal(plain, tok.Secret) {
		t.Error("secret opened to the wrong bytes")
	}
}

func TestKeyFile_WrongKey(t *testing.T) {
	opts := testOptions(t)
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	writeKeyFile(t, opts.KeyFile, randomBytes(32), 0o600) // replaced

	db, err = Open(context.Background(), opts)
	if err == nil {
		db.Close()
		t.Fatal("Open with another key succeeded")
	}
	want := "store: key file " + opts.KeyFile + " does not match database " + opts.Path + " (was it replaced?)"
	if err.Error() != want {
		t.Errorf("error:\n got %q\nwant %q", err, want)
	}
}

func TestKeyFile_MissingForExistingDatabase(t *testing.T) {
	opts := testOptions(t)
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Remove(opts.KeyFile); err != nil {
		t.Fatal(err)
	}

	db, err = Open(context.Background(), opts)
	if err == nil {
		db.Close()
		t.Fatal("Open without the key file succeeded")
	}
	if !strings.Contains(err.Error(), opts.KeyFile+" is missing") {
		t.Errorf("error %q does not say the key file is missing", err)
	}
	if _, err := os.Stat(opts.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Open created a new key for a database that has one")
	}
}

func TestKeyFile_GroupReadable(t *testing.T) {
	for _, perm := range []os.FileMode{0o640, 0o604, 0o660} {
		t.Run(perm.String(), func(t *testing.T) {
			opts := testOptions(t)
			writeKeyFile(t, opts.KeyFile, randomBytes(32), perm)
			db, err := Open(context.Background(), opts)
			if err == nil {
				db.Close()
				t.Fatal("Open with a key file readable by others succeeded")
			}
			if !strings.Contains(err.Error(), "chmod 600 "+opts.KeyFile) {
				t.Errorf("error %q does not say to chmod 600 the file", err)
			}
		})
	}
}

func TestKeyFile_Malformed(t *testing.T) {
	for name, text := range map[string]string{
		"Empty":     "",
		"Short":     base64.StdEncoding.EncodeToString(randomBytes(16)) + "\n",
		"Long":      base64.StdEncoding.EncodeToString(randomBytes(64)) + "\n",
		"NotBase64": "this is not base64 at all, not even close!!\n",
		"Hex":       strings.Repeat("ab", 32) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t)
			if err := os.WriteFile(opts.KeyFile, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(context.Background(), opts)
			if err == nil {
				db.Close()
				t.Fatal("Open with a malformed key file succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "store: key file "+opts.KeyFile) || !strings.Contains(msg, "32") {
				t.Errorf("error %q does not name the file and the expected size", msg)
			}
			if text != "" && strings.Contains(msg, strings.TrimSpace(text)) {
				t.Error("error contains the key file's contents")
			}
		})
	}
}

// TestSecretsSealed looks for token secrets and the sealing key in the bytes
// of the database and its write-ahead log.
func TestSecretsSealed(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	db, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, db, "alice")
	var secrets [][]byte
	for range 5 {
		secrets = append(secrets, mustAddToken(t, db, "alice").Secret)
	}
	keyText, err := os.ReadFile(opts.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(keyText)))
	if err != nil {
		t.Fatal(err)
	}

	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	check := func(when string, files ...string) {
		t.Helper()
		var all []byte
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				t.Fatalf("%s: %s is empty", when, name)
			}
			all = append(all, b...)
		}
		if !bytes.Contains(all, []byte("alice")) {
			t.Fatalf("%s: the files do not even hold the user name; wrong files?", when)
		}
		for i, s := range secrets {
			if bytes.Contains(all, s) {
				t.Errorf("%s: secret %d found in the clear", when, i)
			}
			if bytes.Contains(all, []byte(b32.EncodeToString(s))) {
				t.Errorf("%s: secret %d found in base32", when, i)
			}
		}
		for _, k := range [][]byte{key, []byte(strings.TrimSpace(string(keyText))), []byte(b32.EncodeToString(key))} {
			if bytes.Contains(all, k) {
				t.Errorf("%s: sealing key found", when)
			}
		}
	}
	check("open", opts.Path, opts.Path+"-wal")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", opts.Path) // checkpointed into the main file
}

// TestSealBoundToRow moves a sealed secret to another token row: it must not
// open there, and UserAuth must fail rather than skip the token.
func TestSealBoundToRow(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	mustCreateUser(t, db, "alice")
	t1 := mustAddToken(t, db, "alice")
	t2 := mustAddToken(t, db, "alice")

	if _, err := db.w.Exec(`UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE id = ?) WHERE id = ?`, t1.ID, t2.ID); err != nil {
		t.Fatal(err)
	}
	_, err := db.UserAuth(ctx, "alice")
	if err == nil {
		t.Fatal("UserAuth succeeded with a secret moved to another row")
	}
	if !strings.HasPrefix(err.Error(), "store: ") || !strings.Contains(err.Error(), "token "+strconv.FormatInt(t2.ID, 10)) {
		t.Errorf("error %q does not name the token", err)
	}
	// GetUser does not unseal, so the admin can still see and reset it.
	if _, err := db.GetUser(ctx, "alice"); err != nil {
		t.Error(err)
	}
}

// Processes that start on a fresh directory at the same moment (the server
// and an admin command, or several admin commands) agree on one key (none
// reads a half-written key file) and all get the database set up (none gives
// up on "database is locked" while another creates the schema).
func TestKeyFile_ConcurrentCreate(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		opts := Options{Path: filepath.Join(dir, "db"), KeyFile: filepath.Join(dir, "key")}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := Open(context.Background(), opts)
				if err != nil {
					errs <- err
					return
				}
				db.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: concurrent first opens: %v", round, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".radotp-key-*")); len(left) != 0 {
			t.Fatalf("temporary key files left: %v", left)
		}
	}
}
