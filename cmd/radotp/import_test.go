package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
)

// These tests run `radotp user import` in-process against a real SQLite
// file.

const (
	importKeyA = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" // 20 bytes
	importKeyB = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238's key
)

// importEnv is a config file and its database directory.
type importEnv struct {
	dir, cfg string
}

func newImportEnv(t *testing.T) importEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(cfg, []byte("[database]\npath = \"radotp.db\"\nkey_file = \"radotp.key\"\n[totp]\ndigits = 6\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return importEnv{dir: dir, cfg: cfg}
}

// run runs one command in-process with stdin and returns stdout, stderr and
// the exit status.
func (e importEnv) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(args, "--config", e.cfg), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func (e importEnv) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e importEnv) users(t *testing.T) map[string]store.User {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(e.dir, "radotp.db"), KeyFile: filepath.Join(e.dir, "radotp.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := db.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.User{}
	for _, u := range list {
		full, err := db.UserAuth(context.Background(), u.Name)
		if err != nil {
			t.Fatal(err)
		}
		m[u.Name] = full
	}
	return m
}

func mustHash(t *testing.T) string {
	t.Helper()
	h, err := password.Hash([]byte("hunter2"), password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestUserImport_CSV(t *testing.T) {
	e := newImportEnv(t)
	hash := mustHash(t)
	csv := "\xef\xbb\xbf# exported from the old server\n" +
		"Name,email,password_hash,key,policy,algorithm,digits,period\n" +
		"alice,alice@example.org,\"" + hash + "\"," + importKeyA + ",,,,\n" +
		"bob,,,\"gezd gnbv gy3t qojq gezd gnbv gy3t qojq\",optional,sha256,8,60\n" +
		"carol,carol@example.org,,,disabled,,,\n"
	out, errs, code := e.run(t, "", "user", "import", e.file(t, "users.csv", csv))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "imported 3 users (2 with a token)") {
		t.Errorf("output %q", out)
	}
	got := e.users(t)
	keyA, _ := base32.StdEncoding.DecodeString(importKeyA)
	keyB, _ := base32.StdEncoding.DecodeString(importKeyB)
	a, b, c := got["alice"], got["bob"], got["carol"]
	switch {
	case a.Email != "alice@example.org" || a.PasswordHash != hash || a.Policy != "" || len(a.Tokens) != 1:
		t.Errorf("alice: %+v", a)
	case !bytes.Equal(a.Tokens[0].Secret, keyA) || a.Tokens[0].Algorithm != "SHA1" || a.Tokens[0].Digits != 6 || a.Tokens[0].Period != 30:
		t.Errorf("alice's token: %+v", a.Tokens[0])
	case b.Policy != "optional" || len(b.Tokens) != 1 || !bytes.Equal(b.Tokens[0].Secret, keyB) ||
		b.Tokens[0].Algorithm != "SHA256" || b.Tokens[0].Digits != 8 || b.Tokens[0].Period != 60:
		t.Errorf("bob: %+v", b)
	case c.Policy != "disabled" || len(c.Tokens) != 0 || c.PasswordHash != "":
		t.Errorf("carol: %+v", c)
	}
	if a.Tokens[0].ActiveAt.After(a.Tokens[0].CreatedAt) {
		t.Errorf("imported token not active at once: %+v", a.Tokens[0])
	}
}

func TestUserImport_JSON(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"Array", `[
  {"name": "alice", "key": "` + importKeyA + `", "digits": 6, "period": 30},
  {"name": "bob", "email": "bob@example.org"}
]`},
		{"Lines", `{"name": "alice", "key": "` + importKeyA + `", "digits": 6, "period": 30}

{"name": "bob", "email": "bob@example.org"}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newImportEnv(t)
			// From stdin: the format comes from the first character.
			if _, errs, code := e.run(t, tc.content, "user", "import", "-"); code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			got := e.users(t)
			if len(got) != 2 || len(got["alice"].Tokens) != 1 || got["bob"].Email != "bob@example.org" {
				t.Errorf("imported %+v", got)
			}
		})
	}
}

// A file with problems is reported line by line, and nothing is written.
func TestUserImport_Errors(t *testing.T) {
	e := newImportEnv(t)
	if _, errs, code := e.run(t, "", "user", "add", "existing"); code != 0 {
		t.Fatal(errs)
	}
	hash := mustHash(t)
	csv := "name,password,password_hash,key,policy,digits\n" +
		"ok1,,,,,\n" +
		"with space,,,,,\n" + // 3: fine (spaces inside a name are allowed)
		"k1,,,NOTBASE32!,,\n" + // 4
		"k2,,,JBSWY3DP,,\n" + // 5: too short
		"p1,secret,\"" + hash + "\",,,\n" + // 6: both
		"pol,,,,sometimes,\n" + // 7
		"dig,,,,,7\n" + // 8: digits without key
		"ok1,,,,,\n" + // 9: duplicate
		"existing,,,,,\n" + // 10: in the database
		",,,,,\n" + // 11: no name
		"h1,,$argon2id$v=19$m=1,,,\n" + // 12: bad hash
		"OK1,,,,,\n" + // 13: ok1 in another case: the same user
		"EXISTING,,,,,\n" // 14: so is this
	p := e.file(t, "bad.csv", csv)
	_, errs, code := e.run(t, "", "user", "import", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errs)
	}
	for _, want := range []string{
		"11 problems, nothing imported",
		"line 4: key: not base32",
		"line 5: key: 5 bytes",
		"line 6: both password and password_hash given",
		`line 7: policy "sometimes"`,
		"line 8: digits given without a key",
		`line 9: user "ok1" already on line 2`,
		`line 10: user "existing" already exists`,
		"line 11: name is missing",
		"line 12: password_hash: argon2id",
		`line 13: user "OK1" already on line 2`,
		`line 14: user "EXISTING" already on line 10`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if i, j := strings.Index(errs, "line 10:"), strings.Index(errs, "line 11:"); i < 0 || j < i {
		t.Errorf("problems not in line order:\n%s", errs)
	}
	if got := e.users(t); len(got) != 1 {
		t.Errorf("users after a failed import: %v", got)
	}

	// Syntax errors stop at once, with the line.
	for _, tc := range []struct{ name, content, want string }{
		{"csv", "name,colour\nx,red\n", `line 1: unknown column "colour"`},
		{"csv", "name,key\nx\n", "line 2: wrong number of fields"},
		{"csv", "email\nx@example.org\n", "line 1: no name column"},
		{"json", "[\n{\"name\": \"x\"},\n{\"name\": 5}\n]", `line 3: field "name": want a string`},
		{"json", "{\"name\": \"x\"}\n{\"nom\": \"y\"}\n", `line 2: unknown field "nom"`},
		{"json", "{\"name\": \"x\"}\n{\"name\": \n", "line 2: not a JSON object"},
	} {
		p := e.file(t, "syntax."+tc.name, tc.content)
		if _, errs, code := e.run(t, "", "user", "import", p); code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tc.content, code, errs, tc.want)
		}
	}
}

func TestUserImport_PasswordsAndDryRun(t *testing.T) {
	e := newImportEnv(t)
	p := e.file(t, "users.csv", "name,password\nalice,hunter2\nbob,\n")
	out, errs, code := e.run(t, "", "user", "import", p, "--dry-run")
	if code != 0 || !strings.Contains(out, "2 users (0 with a token) can be imported; nothing written") {
		t.Fatalf("dry run: exit %d, %q %q", code, out, errs)
	}
	if got := e.users(t); len(got) != 0 {
		t.Fatalf("dry run wrote %v", got)
	}
	if _, errs, code := e.run(t, "", "user", "import", p); code != 0 {
		t.Fatal(errs)
	}
	got := e.users(t)
	ok, err := password.Check(got["alice"].PasswordHash, []byte("hunter2"))
	if !ok || err != nil || !strings.HasPrefix(got["alice"].PasswordHash, "$argon2id$") {
		t.Errorf("alice's hash %q: %v %v", got["alice"].PasswordHash, ok, err)
	}
	if got["bob"].PasswordHash != "" {
		t.Errorf("bob has a hash: %q", got["bob"].PasswordHash)
	}
}

// checkHashFormat must accept what password.Check can check and refuse what
// it cannot, without computing a hash.
func TestCheckHashFormat(t *testing.T) {
	argon := mustHash(t)
	bc, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(argon, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, h := range []string{
		argon, string(bc),
		with(2, "v=16"), with(3, "m=4,t=1,p=1"), with(3, "m=64,t=0,p=1"), with(3, "m=64,t=1,p=0"),
		with(3, "m=2000000,t=1,p=1"), with(3, "m=64;t=1"), with(4, "c2FsdA"), with(4, "!!"), with(5, "a2V5"),
		argon + "$extra", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		string(bc[:40]), "$2b$99$" + string(bc[7:]), "plain", "",
	} {
		want := password.ValidHash(h) == nil
		if got := checkHashFormat(h) == nil; got != want {
			t.Errorf("checkHashFormat(%q) ok = %v, password.ValidHash ok = %v", h, got, want)
		}
	}
}
