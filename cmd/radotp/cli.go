package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

const defaultConfigPath = "/etc/radotp/radotp.toml"

const usage = `usage:
  radotp serve        [--config FILE]
  radotp check-config [--config FILE]
  radotp user add NAME [--email ADDR] [--password-stdin] [--policy default|required|optional|disabled] [--invite]
  radotp user passwd NAME            (new password on stdin)
  radotp user set NAME [--policy default|required|optional|disabled] [--email ADDR]
  radotp user list [--json]
  radotp user show NAME [--json]
  radotp user delete NAME
  radotp user unlock NAME
  radotp user import FILE|- [--format csv|json] [--dry-run] [--batch N] [--activation-delay D]
  radotp token add NAME [--secret-stdin | --secret BASE32] [--activate-now]
  radotp token reset NAME
  radotp enroll link NAME [--ttl DURATION] [--email]   (prints the one-time enrollment URL)
  radotp audit [--user NAME] [--since DURATION] [--limit N] [--json]
  radotp backup FILE                 (consistent copy of the database while serving)
Every command takes --config FILE (default $RADOTP_CONFIG, then /etc/radotp/radotp.toml).
`

// usageError is a mistake in the command line: exit status 2 and the usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// cli is one invocation: its streams and parsed common flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	now            func() time.Time
}

// run executes one command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	err := c.dispatch(args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "radotp: %s\n%s", ue.msg, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "radotp: %s\n", err)
		return 1
	}
}

func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return c.serve(rest)
	case "check-config":
		return c.checkConfig(rest)
	case "audit":
		return c.audit(rest)
	case "backup":
		return c.backup(rest)
	case "user", "token", "enroll":
		if len(rest) == 0 {
			return usageError{fmt.Sprintf("%q needs a subcommand", cmd)}
		}
		sub := cmd + " " + rest[0]
		h, ok := map[string]func([]string) error{
			"user add": c.userAdd, "user passwd": c.userPasswd, "user list": c.userList,
			"user show": c.userShow, "user delete": c.userDelete, "user unlock": c.userUnlock, "user set": c.userSet,
			"user import": c.userImport, "enroll link": c.enrollLink,
			"token add": c.tokenAdd, "token reset": c.tokenReset,
		}[sub]
		if !ok {
			return usageError{fmt.Sprintf("unknown command %q", sub)}
		}
		return h(rest[1:])
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// flags returns a FlagSet for a command with --config already defined.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.configPath, "config", "", "configuration file")
	return fs
}

// parse parses flags that may stand before or after the positional
// arguments, and checks that exactly npos positional arguments were given.
func parse(fs *flag.FlagSet, args []string, npos int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != npos {
		if npos == 0 {
			return nil, usageError{fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), pos)}
		}
		return nil, usageError{fmt.Sprintf("%s needs %s", fs.Name(), what)}
	}
	return pos, nil
}

func (c *cli) loadConfig() (*config.Config, error) {
	p := c.configPath
	if p == "" {
		p = os.Getenv("RADOTP_CONFIG")
	}
	if p == "" {
		p = defaultConfigPath
	}
	cfg, err := config.Load(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config file %s does not exist; pass --config FILE or set RADOTP_CONFIG", p)
	}
	return cfg, err
}

// openStore loads the config and opens the database it names.
func (c *cli) openStore() (*config.Config, *store.DB, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(context.Background(), store.Options{Path: cfg.Database.Path, KeyFile: cfg.Database.KeyFile, Now: c.now})
	if err != nil {
		return nil, nil, err
	}
	return cfg, db, nil
}

func (c *cli) serve(args []string) error {
	if _, err := parse(c.flags("serve"), args, 0, ""); err != nil {
		return err
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, c.stderr)
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	m := &Main{Config: cfg, Logger: log}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Run(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			_ = m.Reload() // logs and counts; a bad file keeps the old config
			continue
		case err := <-m.Served():
			m.Close()
			return err
		case <-ctx.Done():
		}
		break
	}
	log.Info("radotp stopping: finishing requests in flight")
	err = m.Close()
	log.Info("radotp stopped")
	return err
}

func (c *cli) checkConfig(args []string) error {
	if _, err := parse(c.flags("check-config"), args, 0, ""); err != nil {
		return err
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	// Build the first-factor backends as serve would (they connect only
	// when asked), so a bad DN template, filter or CA file shows up here.
	_, closeFF, err := firstFactorFromConfig(cfg, verifier.Local(password.NewHasher(1), nil), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	closeFF()
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(c.stdout, "%s: OK (%d clients)\n", cfg.Path, len(cfg.Clients))
	return nil
}

// checkName allows what a NAS can send in User-Name: 1..253 bytes of UTF-8,
// no control characters, no leading or trailing space.
func checkName(n string) error {
	switch {
	case n == "" || len(n) > 253:
		return fmt.Errorf("user name %q: must be 1 to 253 bytes", n)
	case !utf8.ValidString(n):
		return fmt.Errorf("user name %q: not valid UTF-8", n)
	case strings.TrimSpace(n) != n:
		return fmt.Errorf("user name %q: leading or trailing space", n)
	case strings.IndexFunc(n, unicode.IsControl) >= 0:
		return fmt.Errorf("user name %q: contains a control character", n)
	}
	return nil
}

func checkEmail(e string) error {
	if !strings.Contains(e, "@") || strings.ContainsAny(e, " \t\r\n<>,;\"") {
		return fmt.Errorf("--email %q: not an e-mail address", e)
	}
	return nil
}

func checkPolicy(p string) (string, error) {
	switch p {
	case "default", "":
		return "", nil
	case "required", "optional", "disabled":
		return p, nil
	}
	return "", usageError{fmt.Sprintf("--policy %q: must be one of default, required, optional, disabled", p)}
}

// readPassword reads one password from stdin: the first line, without its
// line ending.
func (c *cli) readPassword() ([]byte, error) {
	r := bufio.NewReader(io.LimitReader(c.stdin, 4096))
	line, err := r.ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("no password on stdin (give it as the first line)")
	}
	if len(line) > 128-8 {
		return nil, errors.New("password longer than 120 bytes: RADIUS User-Password carries at most 128 bytes with the code")
	}
	return []byte(line), nil
}

func notFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	}
	return err
}

func (c *cli) userAdd(args []string) error {
	fs := c.flags("user add")
	email := fs.String("email", "", "e-mail address")
	pwStdin := fs.Bool("password-stdin", false, "read the password from stdin")
	policy := fs.String("policy", "default", "default|required|optional|disabled")
	invite := fs.Bool("invite", false, "mail an enrollment link to --email")
	pos, err := parse(fs, args, 1, "a user NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	if err := checkName(name); err != nil {
		return err
	}
	pol, err := checkPolicy(*policy)
	if err != nil {
		return err
	}
	if *email != "" {
		if err := checkEmail(*email); err != nil {
			return err
		}
	}
	if *invite && *email == "" {
		return usageError{"--invite needs --email ADDR: the enrollment link is mailed there"}
	}
	var hash string
	if *pwStdin {
		pw, err := c.readPassword()
		if err != nil {
			return err
		}
		if hash, err = password.Hash(pw, password.OWASP); err != nil {
			return err
		}
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	if *invite && cfg.Enrollment.PublicURL == "" {
		return errors.New("--invite: enrollment.public_url is not set in the configuration; enrollment links are built from it")
	}
	if _, err := db.CreateUser(context.Background(), store.User{Name: name, Email: *email, PasswordHash: hash, Policy: pol}); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("user %q already exists", name)
		}
		return err
	}
	fmt.Fprintf(c.stdout, "user %s added\n", name)
	if hash == "" {
		fmt.Fprintf(c.stderr, "note: %s has no password; set one with `radotp user passwd %s` (clients in append mode check it)\n", name, name)
	}
	if *invite {
		return c.makeLink(cfg, db, name, store.LinkInvite, 0, true) // enroll.go
	}
	return nil
}

func (c *cli) userPasswd(args []string) error {
	pos, err := parse(c.flags("user passwd"), args, 1, "a user NAME")
	if err != nil {
		return err
	}
	pw, err := c.readPassword()
	if err != nil {
		return err
	}
	hash, err := password.Hash(pw, password.OWASP)
	if err != nil {
		return err
	}
	_, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetPassword(context.Background(), pos[0], hash); err != nil {
		return notFound(err, pos[0])
	}
	fmt.Fprintf(c.stdout, "password of %s changed\n", pos[0])
	return nil
}

// userView is the --json shape of a user: a contract for scripts.
type userView struct {
	Name            string      `json:"name"`
	Email           string      `json:"email"`
	Policy          string      `json:"policy"`           // as set on the user: default|required|optional|disabled
	EffectivePolicy string      `json:"effective_policy"` // what applies at a client without its own policy
	PolicyFrom      string      `json:"policy_from"`      // user | default
	Failures        int         `json:"failures"`
	LockedUntil     *time.Time  `json:"locked_until,omitempty"`
	HasPassword     bool        `json:"has_password"`
	CreatedAt       time.Time   `json:"created_at"`
	Tokens          []tokenView `json:"tokens"`
	// AtClients lists the clients whose own policy changes what applies.
	AtClients []clientPolicy `json:"at_clients"`
}

type clientPolicy struct {
	Client string `json:"client"`
	Policy string `json:"policy"`
	From   string `json:"from"` // user | client
}

type tokenView struct {
	ID        int64      `json:"id"`
	State     string     `json:"state"` // pending | activating | active | superseded
	Algorithm string     `json:"algorithm"`
	Digits    int        `json:"digits"`
	Period    int        `json:"period"`
	CreatedAt time.Time  `json:"created_at"`
	ActiveAt  time.Time  `json:"active_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"` // start of the last accepted time step
}

func view(u store.User, cfg *config.Config, now time.Time) userView {
	pol := u.Policy
	if pol == "" {
		pol = "default"
	}
	def := verifier.Policy(cfg.Policy.Default)
	eff, from := verifier.EffectivePolicy(verifier.Policy(u.Policy), verifier.PolicyDefault, def)
	v := userView{
		Name: u.Name, Email: u.Email, Policy: pol, EffectivePolicy: string(eff), PolicyFrom: from,
		Failures: u.Failures, HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt.UTC(), Tokens: []tokenView{},
		AtClients: []clientPolicy{},
	}
	for _, cl := range cfg.Clients {
		if cl.Policy == "" {
			continue
		}
		p, from := verifier.EffectivePolicy(verifier.Policy(u.Policy), verifier.Policy(cl.Policy), def)
		v.AtClients = append(v.AtClients, clientPolicy{Client: cl.Name, Policy: string(p), From: from})
	}
	if now.Before(u.LockedUntil) {
		t := u.LockedUntil.UTC()
		v.LockedUntil = &t
	}
	var newestActive int64 = -1
	for _, t := range u.Tokens {
		if t.State == store.TokenActive && !now.Before(t.ActiveAt) {
			newestActive = t.ID
		}
	}
	for _, t := range u.Tokens {
		tv := tokenView{ID: t.ID, State: t.State, Algorithm: t.Algorithm, Digits: t.Digits, Period: t.Period,
			CreatedAt: t.CreatedAt.UTC(), ActiveAt: t.ActiveAt.UTC()}
		switch {
		case t.State != store.TokenActive:
		case now.Before(t.ActiveAt):
			tv.State = "activating"
		case t.ID != newestActive:
			tv.State = "superseded"
		}
		if t.LastStep > 0 {
			lu := time.Unix(t.LastStep*int64(t.Period), 0).UTC()
			tv.LastUsed = &lu
		}
		v.Tokens = append(v.Tokens, tv)
	}
	return v
}

func (c *cli) userList(args []string) error {
	fs := c.flags("user list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	users, err := db.ListUsers(context.Background())
	if err != nil {
		return err
	}
	now := c.now()
	views := make([]userView, 0, len(users))
	for _, u := range users {
		views = append(views, view(u, cfg, now))
	}
	if *asJSON {
		return writeJSON(c.stdout, views)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tEMAIL\tPOLICY\tTOKENS\tLOCKED")
	for _, v := range views {
		locked := "no"
		if v.LockedUntil != nil {
			locked = "until " + v.LockedUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, dash(v.Email), v.EffectivePolicy, tokenSummary(v.Tokens), locked)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tokenSummary(ts []tokenView) string {
	if len(ts) == 0 {
		return "none"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.State
	}
	return strings.Join(parts, ",")
}

func (c *cli) userShow(args []string) error {
	fs := c.flags("user show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1, "a user NAME")
	if err != nil {
		return err
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.GetUser(context.Background(), pos[0])
	if err != nil {
		return notFound(err, pos[0])
	}
	v := view(u, cfg, c.now())
	if *asJSON {
		return writeJSON(c.stdout, v)
	}
	w := c.stdout
	fmt.Fprintf(w, "name:      %s\n", v.Name)
	fmt.Fprintf(w, "email:     %s\n", dash(v.Email))
	fmt.Fprintf(w, "password:  %s\n", map[bool]string{true: "set", false: "none"}[v.HasPassword])
	fmt.Fprintf(w, "policy:    %s (set by %s)\n", v.EffectivePolicy,
		map[string]string{"user": "this user", "default": "policy.default"}[v.PolicyFrom])
	for _, cp := range v.AtClients {
		fmt.Fprintf(w, "           at client %s: %s (set by %s)\n", cp.Client, cp.Policy,
			map[string]string{"user": "this user", "client": "the client"}[cp.From])
	}
	if len(cfg.Policy.TrustedNetworks) > 0 {
		fmt.Fprintf(w, "           from trusted networks %s: no second factor\n", strings.Join(cfg.Policy.TrustedNetworks, ", "))
	}
	fmt.Fprintf(w, "failures:  %d\n", v.Failures)
	if v.LockedUntil != nil {
		fmt.Fprintf(w, "locked:    until %s (radotp user unlock %s)\n", v.LockedUntil.Format(time.RFC3339), v.Name)
	} else {
		fmt.Fprintf(w, "locked:    no\n")
	}
	fmt.Fprintf(w, "created:   %s\n", v.CreatedAt.Format(time.RFC3339))
	if len(v.Tokens) == 0 {
		fmt.Fprintf(w, "tokens:    none (radotp token add %s)\n", v.Name)
	}
	for _, t := range v.Tokens {
		last := "never"
		if t.LastUsed != nil {
			last = t.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "token %d:   %s, TOTP %s %d digits %ds, active from %s, last used %s\n",
			t.ID, t.State, t.Algorithm, t.Digits, t.Period, t.ActiveAt.Format(time.RFC3339), last)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// onUser runs a command on one user: it parses NAME, opens the store, runs
// f, and prints what f returns; a missing user is one clear sentence.
func (c *cli) onUser(cmd string, args []string, f func(ctx context.Context, db *store.DB, name string) (string, error)) error {
	pos, err := parse(c.flags(cmd), args, 1, "a user NAME")
	if err != nil {
		return err
	}
	_, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	msg, err := f(context.Background(), db, pos[0])
	if err != nil {
		return notFound(err, pos[0])
	}
	fmt.Fprintln(c.stdout, msg)
	return nil
}

func (c *cli) userDelete(args []string) error {
	return c.onUser("user delete", args, func(ctx context.Context, db *store.DB, name string) (string, error) {
		return fmt.Sprintf("user %s deleted, with their tokens", name), db.DeleteUser(ctx, name)
	})
}

func (c *cli) userUnlock(args []string) error {
	return c.onUser("user unlock", args, func(ctx context.Context, db *store.DB, name string) (string, error) {
		return fmt.Sprintf("user %s unlocked, failure count cleared", name), db.UnlockUser(ctx, name)
	})
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// decodeSecret reads a base32 key as people paste it: any case, spaces or
// dashes between groups, padding optional.
func decodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	k, err := b32.DecodeString(s)
	if err != nil {
		return nil, errors.New("--secret: not base32 (letters A-Z and digits 2-7)")
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("--secret: key is %d bytes; RFC 4226 asks for at least 16 (26 base32 characters)", len(k))
	}
	return k, nil
}

func (c *cli) tokenAdd(args []string) error {
	fs := c.flags("token add")
	secret := fs.String("secret", "", "existing base32 key (hardware token, migration); visible in ps, prefer --secret-stdin")
	secretStdin := fs.Bool("secret-stdin", false, "read the existing base32 key from stdin")
	activateNow := fs.Bool("activate-now", false, "skip totp.activation_delay")
	pos, err := parse(fs, args, 1, "a user NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	if *secretStdin {
		if *secret != "" {
			return usageError{"give --secret or --secret-stdin, not both"}
		}
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 1024)).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read the key from stdin: %w", err)
		}
		if *secret = strings.TrimSpace(line); *secret == "" {
			return errors.New("--secret-stdin: no key on stdin")
		}
	}
	var key []byte
	if *secret != "" {
		if key, err = decodeSecret(*secret); err != nil {
			return err
		}
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	if key == nil {
		key = make([]byte, otpcode.KeySize(cfg.TOTP.Algorithm))
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("random key: %w", err)
		}
	}
	now := c.now()
	activeAt := now.Add(cfg.TOTP.ActivationDelay.Duration)
	if *activateNow {
		activeAt = now
	}
	tok, err := db.AddToken(context.Background(), name, store.Token{
		Secret: key, Algorithm: cfg.TOTP.Algorithm, Digits: cfg.TOTP.Digits,
		Period: int(cfg.TOTP.Period.Duration / time.Second), State: store.TokenActive, ActiveAt: activeAt,
	})
	if err != nil {
		return notFound(err, name)
	}
	uri, err := otpauthURI(cfg, name, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "token %d added for %s; active from %s", tok.ID, name, activeAt.UTC().Format(time.RFC3339))
	if d := activeAt.Sub(now); d > 0 {
		fmt.Fprintf(c.stdout, " (in %s)", d.Round(time.Second))
	}
	fmt.Fprintf(c.stdout, "\nkey (base32, shown only now): %s\n%s\n", otpcode.Groups(b32.EncodeToString(key)), uri)
	if n := len(tokensBefore(db, name)); n > 1 {
		fmt.Fprintf(c.stdout, "%s's earlier token keeps working until this one is active, then this one replaces it\n", name)
	}
	return nil
}

// tokensBefore lists a user's tokens (for the replacement note).
func tokensBefore(db *store.DB, name string) []store.Token {
	u, err := db.GetUser(context.Background(), name)
	if err != nil {
		return nil
	}
	return u.Tokens
}

// otpauthURI is the Key URI that authenticator apps scan:
// otpauth://totp/ISSUER:NAME?secret=...&issuer=...&algorithm=...&digits=...&period=...
func otpauthURI(cfg *config.Config, name string, key []byte) (string, error) {
	k, err := otpcode.KeyURI(cfg.TOTP.Issuer, name, key, cfg.TOTP.Algorithm, cfg.TOTP.Digits, int(cfg.TOTP.Period.Duration/time.Second))
	if err != nil {
		return "", fmt.Errorf("otpauth URI: %w", err)
	}
	return k.URL(), nil
}

func (c *cli) tokenReset(args []string) error {
	return c.onUser("token reset", args, func(ctx context.Context, db *store.DB, name string) (string, error) {
		n, err := db.DeleteTokens(ctx, name)
		return fmt.Sprintf("removed %d token(s) of %s; they must enroll again (radotp token add %s)", n, name, name), err
	})
}
