package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"iter"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
)

// `radotp user import FILE` creates users (and their tokens) in bulk, from
// CSV or JSON.
//
// CSV: a header line names the columns, in any order; '#' starts a comment
// line. JSON: an array of objects, or one object per line (JSON Lines). The
// fields:
//
//	name           required; as for `user add`
//	email          optional
//	password       optional; hashed here with argon2id (about 20-50 ms per user on all cores)
//	password_hash  optional, instead of password: argon2id PHC or bcrypt, stored as is
//	policy         optional: default, required, optional, disabled
//	key            optional: the TOTP key in base32; empty = no token
//	algorithm      optional: SHA1, SHA256, SHA512 (default totp.algorithm)
//	digits         optional: 6 or 8 (default totp.digits)
//	period         optional: seconds, 15 to 300 (default totp.period)
//
// The whole file is checked first; every problem is reported with its line
// number and nothing is written. Then users are written in transactions of
// --batch users; if one fails (say another process just created one of the
// names), the users written so far are deleted again, so an import adds
// every user or none.

const (
	maxImportErrors = 20
	maxKeyBytes     = 128
	maxFieldBytes   = 4096
)

// importFields are the known columns and JSON fields, in the order of the
// f* indexes.
var importFields = []string{"name", "email", "password", "password_hash", "policy", "key", "algorithm", "digits", "period"}

const (
	fName = iota
	fEmail
	fPassword
	fPasswordHash
	fPolicy
	fKey
	fAlgorithm
	fDigits
	fPeriod
	nFields
)

// importRecord is one line of the input, as text ("" for a field not
// given; JSON numbers as their text).
type importRecord struct {
	line int
	f    [nFields]string
}

func (c *cli) userImport(args []string) error {
	fs := c.flags("user import")
	format := fs.String("format", "", "csv or json (default: from the file name, else from its first character)")
	dryRun := fs.Bool("dry-run", false, "check the file only")
	batch := fs.Int("batch", 10000, "users per transaction")
	delay := fs.Duration("activation-delay", 0, "imported tokens work after this delay (imported keys are usually in the users' apps already)")
	pos, err := parse(fs, args, 1, "a FILE (or - for stdin)")
	if err != nil {
		return err
	}
	if *batch < 1 {
		return usageError{"--batch must be at least 1"}
	}
	if *delay < 0 {
		return usageError{"--activation-delay must not be negative"}
	}
	if *format != "" && *format != "csv" && *format != "json" {
		return usageError{fmt.Sprintf("--format %q: must be csv or json", *format)}
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}

	// The file is read twice (check, then import): stdin goes to a
	// temporary file first.
	name := pos[0]
	var f *os.File
	if name == "-" {
		if f, err = spool(c.stdin); err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		defer os.Remove(f.Name())
		name = "stdin"
	} else if f, err = os.Open(name); err != nil {
		return fmt.Errorf("import: %w", unwrapPathErr(err))
	}
	defer f.Close()
	fmtName, err := detectFormat(f, pos[0], *format)
	if err != nil {
		return err
	}

	_, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()

	t0 := c.now()
	n, withToken, lines, err := c.checkImport(ctx, db, cfg, f, fmtName, name)
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(c.stdout, "%s: %d users (%d with a token) can be imported; nothing written (dry run)\n", name, n, withToken)
		return nil
	}
	if n == 0 {
		fmt.Fprintf(c.stdout, "%s: no users to import\n", name)
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	activeAt := c.now().Add(*delay)
	progress := func(done int) {
		if n >= 100000 && (done%100000 < *batch || done == n) {
			fmt.Fprintf(c.stderr, "imported %d of %d users\n", done, n)
		}
	}
	got, err := db.Import(ctx, c.importUsers(cfg, f, fmtName, activeAt), store.ImportOptions{BatchSize: *batch, Progress: progress})
	if err != nil {
		if ie, ok := errors.AsType[*store.ImportError](err); ok {
			where := ""
			if l := lines.lineOf(ie.Name); l > 0 {
				where = fmt.Sprintf("line %d: ", l)
			}
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("%s: %suser %q was created by someone else meanwhile; nothing imported", name, where, ie.Name)
			}
			return fmt.Errorf("%s: %s%v; nothing imported", name, where, ie.Err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(c.stdout, "imported %d users (%d with a token) from %s in %s\n", got, withToken, name,
		c.now().Sub(t0).Round(time.Millisecond))
	return nil
}

func unwrapPathErr(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// spool copies r to a new temporary file (mode 0600: it may hold password
// hashes and keys) and returns it rewound.
func spool(r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "radotp-import-*")
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// detectFormat picks csv or json: the flag, the file name's extension, or
// the first non-blank character ('[' or '{' is JSON).
func detectFormat(f *os.File, name, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	switch {
	case strings.HasSuffix(name, ".csv"):
		return "csv", nil
	case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".jsonl"):
		return "json", nil
	}
	head := make([]byte, 512)
	n, err := f.Read(head)
	if err != nil && err != io.EOF {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(head[:n], bom), " \t\r\n")
	if len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		return "json", nil
	}
	return "csv", nil
}

var bom = []byte("\xef\xbb\xbf")

// lineErrors collects per-line problems.
type lineErrors struct {
	msgs []lineError
	n    int
}

type lineError struct {
	line int
	msg  string
}

// keptErrors bounds the problems kept for sorting; the first
// maxImportErrors of them by line are shown.
const keptErrors = 1000

func (e *lineErrors) add(line int, format string, args ...any) {
	e.n++
	if len(e.msgs) < keptErrors {
		e.msgs = append(e.msgs, lineError{line, fmt.Sprintf(format, args...)})
	}
}

func (e *lineErrors) err(file string) error {
	if e.n == 0 {
		return nil
	}
	// Names already in the database are found in batches, after the lines
	// that follow them.
	slices.SortStableFunc(e.msgs, func(a, b lineError) int { return a.line - b.line })
	shown := e.msgs[:min(len(e.msgs), maxImportErrors)]
	lines := make([]string, len(shown))
	for i, m := range shown {
		lines[i] = fmt.Sprintf("line %d: %s", m.line, m.msg)
	}
	more := ""
	if e.n > len(shown) {
		more = fmt.Sprintf("\n  ... and %d more", e.n-len(shown))
	}
	s := "s"
	if e.n == 1 {
		s = ""
	}
	return fmt.Errorf("%s: %d problem%s, nothing imported:\n  %s%s", file, e.n, s, strings.Join(lines, "\n  "), more)
}

// nameIndex finds the line of a name among a million without giving the
// garbage collector a million strings to scan: the names live in one byte
// slice, the map holds hashes and record numbers only.
type nameIndex struct {
	seed  maphash.Seed
	first map[uint64]int32   // hash of a name -> its record
	more  map[uint64][]int32 // other records with the same hash (rare)
	arena []byte             // the names, back to back
	off   []uint32           // record i's name is arena[off[i]:off[i+1]]
	line  []int32            // record i's line
}

func newNameIndex() *nameIndex {
	return &nameIndex{seed: maphash.MakeSeed(), first: map[uint64]int32{}, more: map[uint64][]int32{}, off: []uint32{0}}
}

func (x *nameIndex) name(i int32) string { return string(x.arena[x.off[i]:x.off[i+1]]) }

// find returns the record holding name and the name's hash. Names are
// compared without regard to ASCII case, as the database does.
func (x *nameIndex) find(name string) (int32, uint64, bool) {
	h := maphash.String(x.seed, foldASCII(name))
	if i, ok := x.first[h]; ok {
		if equalFoldASCII(x.name(i), name) {
			return i, h, true
		}
		for _, j := range x.more[h] {
			if equalFoldASCII(x.name(j), name) {
				return j, h, true
			}
		}
	}
	return -1, h, false
}

// foldASCII lowers A-Z only, as SQLite's NOCASE collation does.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && foldASCII(a) == foldASCII(b)
}

// add records name on line; if the name is there already, it returns the
// earlier line and false.
func (x *nameIndex) add(name string, line int) (int, bool) {
	i, h, ok := x.find(name)
	if ok {
		return int(x.line[i]), false
	}
	i = int32(len(x.line))
	x.arena = append(x.arena, name...)
	x.off = append(x.off, uint32(len(x.arena)))
	x.line = append(x.line, int32(line))
	if _, taken := x.first[h]; taken {
		x.more[h] = append(x.more[h], i)
	} else {
		x.first[h] = i
	}
	return line, true
}

// lineOf returns the line of name, or 0.
func (x *nameIndex) lineOf(name string) int {
	if i, _, ok := x.find(name); ok {
		return int(x.line[i])
	}
	return 0
}

// checkImport reads the whole input and reports every problem: bad fields,
// names twice in the file, names that exist already. It returns the number
// of users, how many have a token, and the line of each name.
func (c *cli) checkImport(ctx context.Context, db *store.DB, cfg *config.Config, f io.Reader, format, file string) (n, withToken int, lines *nameIndex, err error) {
	var errs lineErrors
	lines = newNameIndex()
	var pending []string // names not yet checked against the database
	checkExisting := func() error {
		existing, err := db.ExistingNames(ctx, pending)
		if err != nil {
			return err
		}
		for _, name := range existing {
			errs.add(lines.lineOf(name), "user %q already exists", name)
		}
		pending = pending[:0]
		return nil
	}
	err = readRecords(f, format, func(rec importRecord) error {
		u, _, err := toImportUser(rec, cfg, time.Time{})
		if err != nil {
			errs.add(rec.line, "%v", err)
			return nil
		}
		name := u.User.Name
		if first, ok := lines.add(name, rec.line); !ok {
			errs.add(rec.line, "user %q already on line %d", name, first)
			return nil
		}
		n++
		if u.Token != nil {
			withToken++
		}
		pending = append(pending, name)
		if len(pending) == 500 {
			return checkExisting()
		}
		return nil
	})
	if err == nil && len(pending) > 0 {
		err = checkExisting()
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%s: %w; nothing imported", file, err)
	}
	if err := errs.err(file); err != nil {
		return 0, 0, nil, err
	}
	return n, withToken, lines, nil
}

// importUsers reads the (checked) input again and yields the users, hashing
// plain passwords on all cores.
func (c *cli) importUsers(cfg *config.Config, f io.Reader, format string, activeAt time.Time) iter.Seq2[store.ImportUser, error] {
	return func(yield func(store.ImportUser, error) bool) {
		const chunk = 256
		users := make([]store.ImportUser, 0, chunk)
		plain := make([]string, 0, chunk)
		stopped := errors.New("stopped")
		flush := func() bool {
			if err := hashAll(users, plain); err != nil {
				yield(store.ImportUser{}, err)
				return false
			}
			for _, u := range users {
				if !yield(u, nil) {
					return false
				}
			}
			users, plain = users[:0], plain[:0]
			return true
		}
		err := readRecords(f, format, func(rec importRecord) error {
			u, pw, err := toImportUser(rec, cfg, activeAt)
			if err != nil { // the file changed since it was checked
				return fmt.Errorf("line %d: %w", rec.line, err)
			}
			users, plain = append(users, u), append(plain, pw)
			if len(users) == chunk && !flush() {
				return stopped
			}
			return nil
		})
		switch {
		case errors.Is(err, stopped):
		case err != nil:
			yield(store.ImportUser{}, err)
		default:
			flush()
		}
	}
}

// hashAll sets the PasswordHash of each user with a plain password, on as
// many goroutines as there are CPUs.
func hashAll(users []store.ImportUser, plain []string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range next {
				h, err := password.Hash([]byte(plain[i]), password.OWASP)
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					continue
				}
				users[i].User.PasswordHash = h
			}
		})
	}
	for i, pw := range plain {
		if pw != "" {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// toImportUser checks one record and turns it into a user; a plain password
// is returned apart, to be hashed.
func toImportUser(rec importRecord, cfg *config.Config, activeAt time.Time) (store.ImportUser, string, error) {
	f := &rec.f
	for i, v := range f {
		if len(v) > maxFieldBytes {
			return store.ImportUser{}, "", fmt.Errorf("%s: longer than %d bytes", importFields[i], maxFieldBytes)
		}
	}
	var u store.ImportUser
	name := f[fName]
	if name == "" {
		return u, "", errors.New("name is missing")
	}
	if err := checkName(name); err != nil {
		return u, "", err
	}
	u.User.Name = name
	if e := f[fEmail]; e != "" {
		if err := checkImportEmail(e); err != nil {
			return u, "", err
		}
		u.User.Email = e
	}
	pol, err := checkPolicy(f[fPolicy])
	if err != nil {
		return u, "", fmt.Errorf("policy %q: must be one of default, required, optional, disabled", f[fPolicy])
	}
	u.User.Policy = pol

	pw, hash := f[fPassword], f[fPasswordHash]
	switch {
	case pw != "" && hash != "":
		return u, "", errors.New("both password and password_hash given; give one")
	case len(pw) > 120:
		return u, "", errors.New("password longer than 120 bytes: RADIUS User-Password carries at most 128 bytes with the code")
	case hash != "":
		if err := checkHashFormat(hash); err != nil {
			return u, "", fmt.Errorf("password_hash: %v", err)
		}
		u.User.PasswordHash = hash
	}

	if k := f[fKey]; k != "" {
		key, err := decodeImportKey(k)
		if err != nil {
			return u, "", err
		}
		t := store.Token{Secret: key, Algorithm: cfg.TOTP.Algorithm, Digits: cfg.TOTP.Digits,
			Period: int(cfg.TOTP.Period.Duration / time.Second), State: store.TokenActive, ActiveAt: activeAt}
		if a := f[fAlgorithm]; a != "" {
			t.Algorithm = strings.ToUpper(a)
			if t.Algorithm != "SHA1" && t.Algorithm != "SHA256" && t.Algorithm != "SHA512" {
				return u, "", fmt.Errorf("algorithm %q: must be SHA1, SHA256 or SHA512", a)
			}
		}
		if d := f[fDigits]; d != "" {
			if t.Digits, err = strconv.Atoi(d); err != nil || (t.Digits != 6 && t.Digits != 8) {
				return u, "", fmt.Errorf("digits %q: must be 6 or 8", d)
			}
		}
		if p := f[fPeriod]; p != "" {
			if t.Period, err = strconv.Atoi(p); err != nil || t.Period < 15 || t.Period > 300 {
				return u, "", fmt.Errorf("period %q: must be whole seconds from 15 to 300", p)
			}
		}
		u.Token = &t
	} else {
		for _, k := range []int{fAlgorithm, fDigits, fPeriod} {
			if f[k] != "" {
				return u, "", fmt.Errorf("%s given without a key", importFields[k])
			}
		}
	}
	return u, pw, nil
}

// checkImportEmail is checkEmail's rule, with a message for a file's field.
func checkImportEmail(e string) error {
	if !strings.Contains(e, "@") || strings.ContainsAny(e, " \t\r\n<>,;\"") {
		return fmt.Errorf("email %q: not an e-mail address", e)
	}
	return nil
}

// decodeImportKey reads a base32 key as people write it: any case, spaces or
// dashes between groups, padding optional.
func decodeImportKey(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '-' || c == '=':
		case 'a' <= c && c <= 'z':
			clean = append(clean, c-'a'+'A')
		default:
			clean = append(clean, c)
		}
	}
	k := make([]byte, b32.DecodedLen(len(clean)))
	n, err := b32.Decode(k, clean)
	k = k[:n]
	if err != nil {
		return nil, errors.New("key: not base32 (letters A-Z and digits 2-7)")
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("key: %d bytes; RFC 4226 asks for at least 16 (26 base32 characters)", len(k))
	}
	if len(k) > maxKeyBytes {
		return nil, fmt.Errorf("key: %d bytes; at most %d", len(k), maxKeyBytes)
	}
	return k, nil
}

// checkHashFormat checks that a stored hash can be checked at login, without
// computing it: password.ValidHash runs a full hash (20-50 ms for argon2id),
// which would make a million-user import take hours. The bounds are those
// password.Check enforces.
func checkHashFormat(h string) error {
	switch {
	case strings.HasPrefix(h, "$argon2id$"):
		parts := strings.Split(h, "$")
		if len(parts) != 6 {
			return errors.New("argon2id: want $argon2id$v=19$m=..,t=..,p=..$salt$key")
		}
		if parts[2] != "v=19" {
			return fmt.Errorf("argon2id: unsupported version %q", parts[2])
		}
		var m, t, p uint64
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
			return fmt.Errorf("argon2id: bad parameters %q", parts[3])
		}
		if m < 8 || m > 1<<20 || t < 1 || t > 32 || p < 1 || p > 64 {
			return fmt.Errorf("argon2id: parameters %q out of bounds", parts[3])
		}
		salt, err := base64.RawStdEncoding.DecodeString(parts[4])
		if err != nil || len(salt) < 8 {
			return errors.New("argon2id: bad salt")
		}
		key, err := base64.RawStdEncoding.DecodeString(parts[5])
		if err != nil || len(key) < 16 || len(key) > 64 {
			return errors.New("argon2id: bad key")
		}
		return nil
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil || len(h) != 60 {
			return errors.New("bcrypt: malformed hash")
		}
		return nil
	}
	return errors.New("unknown format (want $argon2id$... or bcrypt $2b$...)")
}

// readRecords calls fn for each record of r. A syntax error in the file
// stops it, with the line; so does an error from fn.
func readRecords(r io.Reader, format string, fn func(importRecord) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	if b, _ := br.Peek(3); bytes.Equal(b, bom) {
		br.Discard(3)
	}
	if format == "csv" {
		return readCSV(br, fn)
	}
	return readJSON(br, fn)
}

func readCSV(r io.Reader, fn func(importRecord) error) error {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return errors.New("empty file: want a header line naming the columns (name,email,password_hash,key,...)")
	}
	if err != nil {
		return csvError(err)
	}
	cols := make([]int, len(head))
	var seen [nFields]bool
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(h))
		k := importField(h)
		if k < 0 {
			return fmt.Errorf("line 1: unknown column %q (known: %s)", head[i], strings.Join(importFields, ", "))
		}
		if seen[k] {
			return fmt.Errorf("line 1: column %q twice", h)
		}
		seen[k] = true
		cols[i] = k
	}
	if !seen[fName] {
		return errors.New("line 1: no name column")
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(err)
		}
		line, _ := cr.FieldPos(0)
		rec := importRecord{line: line}
		for i, v := range row {
			rec.f[cols[i]] = strings.TrimSpace(v)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func csvError(err error) error {
	if pe, ok := errors.AsType[*csv.ParseError](err); ok {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

// importField returns the f* index of a field name, or -1.
func importField(s string) int {
	for i, f := range importFields {
		if f == s {
			return i
		}
	}
	return -1
}

// readJSON reads an array of objects or JSON Lines.
func readJSON(br *bufio.Reader, fn func(importRecord) error) error {
	// Find the first non-blank byte, counting lines.
	line := 1
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b == '\n' {
			line++
		}
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		br.UnreadByte()
		if b == '[' {
			return readJSONArray(br, line, fn)
		}
		return readJSONLines(br, line, fn)
	}
}

func readJSONLines(br *bufio.Reader, line int, fn func(importRecord) error) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for ; sc.Scan(); line++ {
		t := bytes.TrimSpace(sc.Bytes())
		if len(t) == 0 {
			continue
		}
		rec, err := decodeObject(t)
		if err != nil {
			return fmt.Errorf("line %d: %v", line, err)
		}
		rec.line = line
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %v", line, err)
	}
	return nil
}

// readJSONArray reads the array whole (line numbers come from offsets).
func readJSONArray(br *bufio.Reader, line0 int, fn func(importRecord) error) error {
	data, err := io.ReadAll(br)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	counted, line := 0, line0
	lineAt := func(off int64) int {
		line += bytes.Count(data[counted:off], []byte{'\n'})
		counted = int(off)
		return line
	}
	if _, err := dec.Token(); err != nil { // '['
		return fmt.Errorf("line %d: %v", line0, err)
	}
	for dec.More() {
		var raw json.RawMessage
		start := dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("line %d: %v", lineAt(start), err)
		}
		// The object starts after any separator and blanks.
		off := start + int64(len(data[start:])-len(bytes.TrimLeft(data[start:], ", \t\r\n")))
		rec, err := decodeObject(raw)
		l := lineAt(off)
		if err != nil {
			return fmt.Errorf("line %d: %v", l, err)
		}
		rec.line = l
		if err := fn(rec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return fmt.Errorf("line %d: %v", lineAt(dec.InputOffset()), err)
	}
	return nil
}

// decodeObject turns one JSON object into a record: strings as they are,
// numbers as their text; other types and unknown fields are errors.
func decodeObject(b []byte) (importRecord, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return importRecord{}, fmt.Errorf("not a JSON object: %v", err)
	}
	var rec importRecord
	for k, v := range m {
		i := importField(k)
		if i < 0 {
			return importRecord{}, fmt.Errorf("unknown field %q (known: %s)", k, strings.Join(importFields, ", "))
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			rec.f[i] = strings.TrimSpace(s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil && (i == fDigits || i == fPeriod) {
			rec.f[i] = n.String()
			continue
		}
		if string(v) == "null" {
			continue
		}
		return importRecord{}, fmt.Errorf("field %q: want a string", k)
	}
	return rec, nil
}
