package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/radotp/radotp/password"
)

// userSet is the deterministic set of benchmark users: user i is named
// prefix + i (zero-padded), its TOTP key is HMAC-SHA1(seed, name) (20 bytes,
// SHA1, 6 digits, 30 s) and every user has the same password. The load
// generator recomputes keys from the seed, so it needs no file.
type userSet struct {
	n        int
	prefix   string
	seed     []byte
	password string
	width    int // digits in the index part of a name
}

func newUserSet(n int, prefix, seed, pw string) (*userSet, error) {
	if n < 1 || n > 1<<31-1 {
		return nil, fmt.Errorf("--users %d: must be 1 to 2147483647", n)
	}
	if prefix == "" {
		return nil, errors.New("--prefix must not be empty")
	}
	if seed == "" {
		return nil, errors.New("--seed must not be empty")
	}
	return &userSet{n: n, prefix: prefix, seed: []byte(seed), password: pw, width: max(4, len(strconv.Itoa(n-1)))}, nil
}

// appendName appends the name of user i to b.
func (s *userSet) appendName(b []byte, i int) []byte {
	b = append(b, s.prefix...)
	var d [20]byte
	digits := strconv.AppendInt(d[:0], int64(i), 10)
	for range s.width - len(digits) {
		b = append(b, '0')
	}
	return append(b, digits...)
}

func (s *userSet) name(i int) string { return string(s.appendName(nil, i)) }

// key returns user i's TOTP key.
func (s *userSet) key(i int) []byte {
	m := hmac.New(sha1.New, s.seed)
	m.Write(s.appendName(nil, i))
	return m.Sum(nil)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// writeFiles writes the user set for radotp (CSV for `radotp user import`)
// and for FreeRADIUS (a users file with Cleartext-Password and TOTP-Secret,
// and SQL for rlm_sql's radcheck table). Empty paths are skipped. The radotp
// file carries one argon2id hash (OWASP parameters) of the common password
// for every user: checking it costs what checking a per-user hash costs, and
// hashing a million distinct passwords would take hours.
func (s *userSet) writeFiles(csvPath, frUsersPath, frSQLPath string) error {
	if csvPath != "" {
		var hash string
		if s.password != "" {
			var err error
			if hash, err = password.Hash([]byte(s.password), password.OWASP); err != nil {
				return err
			}
		}
		err := writeLines(csvPath, "name,password_hash,key\n", func(w *bufio.Writer, i int) {
			w.Write(s.appendName(w.AvailableBuffer(), i))
			w.WriteString(`,"`) // a PHC string holds commas
			w.WriteString(hash)
			w.WriteString(`",`)
			w.WriteString(b32.EncodeToString(s.key(i)))
			w.WriteByte('\n')
		}, s.n)
		if err != nil {
			return err
		}
	}
	if frUsersPath != "" {
		head := fmt.Sprintf("# radotp-bench: %d users, password+TOTP (rlm_totp: TOTP-Secret base32)\n", s.n)
		err := writeLines(frUsersPath, head, func(w *bufio.Writer, i int) {
			w.Write(s.appendName(w.AvailableBuffer(), i))
			fmt.Fprintf(w, "\tCleartext-Password := %q, TOTP-Secret := %q\n\n", s.password, b32.EncodeToString(s.key(i)))
		}, s.n)
		if err != nil {
			return err
		}
	}
	if frSQLPath != "" {
		err := writeLines(frSQLPath, "BEGIN;\nDELETE FROM radcheck;\n", func(w *bufio.Writer, i int) {
			name := s.name(i)
			fmt.Fprintf(w, "INSERT INTO radcheck (username,attribute,op,value) VALUES ('%s','Cleartext-Password',':=','%s');\n", name, sqlQuote(s.password))
			fmt.Fprintf(w, "INSERT INTO radcheck (username,attribute,op,value) VALUES ('%s','TOTP-Secret',':=','%s');\n", name, b32.EncodeToString(s.key(i)))
		}, s.n)
		if err != nil {
			return err
		}
		// The stock schema indexes radcheck.username (check_username).
		f, err := os.OpenFile(frSQLPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString("COMMIT;\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}

func sqlQuote(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// writeLines writes head and then line(w, i) for i in [0, n) to a new file
// at path (mode 0600: the files hold keys), replacing it atomically.
func writeLines(path, head string, line func(w *bufio.Writer, i int), n int) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(head)
	for i := range n {
		line(w, i)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
