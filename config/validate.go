package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the values; see config.example.toml for what they mean.
const (
	maxWorkers        = 4096
	maxQueueSize      = 1 << 20
	minReplyCacheTTL  = 5 * time.Second
	maxReplyCacheTTL  = 5 * time.Minute
	minReplyCacheSize = 1024
	maxReplyCacheSize = 1 << 24
	minReceiveBuffer  = 64 << 10 // below the kernel's usual default
	maxReceiveBuffer  = 64 << 20 // the kernel counts twice that: ~100,000 requests, seconds at radotp's capacity
	minPeriod         = 15 * time.Second
	maxPeriod         = 300 * time.Second
	maxSkew           = 5
	maxActivation     = 7 * 24 * time.Hour
	maxFailures       = 1000
	minLockout        = time.Second
	maxLockout        = 30 * 24 * time.Hour
	maxSeparator      = 8    // characters
	maxSecretFile     = 4096 // bytes; a RADIUS secret is far shorter
	minSecret         = 16   // bytes; below this Warnings complains
	minChallengeTTL   = 10 * time.Second
	maxChallengeTTL   = 10 * time.Minute
	maxPrompt         = 1000 // bytes; sent as Reply-Message attributes
	minRetention      = time.Hour
	maxRetention      = 10 * 365 * 24 * time.Hour
)

var (
	algorithms = []string{"SHA1", "SHA256", "SHA512"}
	policies   = []string{PolicyRequired, PolicyOptional, PolicyDisabled}
	modes      = []string{ModeAppend, ModeOTP, ModeChallenge, ModeAuto}
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// validate checks every value, normalises some (algorithm upper case,
// client prefixes, secrets) and adds what is wrong to p.
func (c *Config) validate(p *problems) {
	r := &c.Radius
	checkListen(p, "radius.listen", r.Listen)
	intRange(p, scope{}, "radius.workers", r.Workers, 1, maxWorkers)
	intRange(p, scope{}, "radius.queue_size", r.QueueSize, 1, maxQueueSize)
	durationRange(p, scope{}, "radius.reply_cache_ttl", r.ReplyCacheTTL, minReplyCacheTTL, maxReplyCacheTTL)
	intRange(p, scope{}, "radius.reply_cache_size", r.ReplyCacheSize, minReplyCacheSize, maxReplyCacheSize)
	if b := r.ReceiveBuffer; b != 0 && (b < minReceiveBuffer || b > maxReceiveBuffer) {
		p.bad(scope{}, "radius.receive_buffer", b, "must be 0 (the system's default) or from %d to %d bytes", minReceiveBuffer, maxReceiveBuffer)
	}

	db := &c.Database
	if db.Path == "" {
		p.bad(scope{}, "database.path", db.Path, "must not be empty")
	}
	if db.KeyFile == "" {
		p.bad(scope{}, "database.key_file", db.KeyFile, "must not be empty")
	}
	if db.Path != "" && filepath.Clean(db.Path) == filepath.Clean(db.KeyFile) {
		p.bad(scope{}, "database.key_file", db.KeyFile, "must not be the database file")
	}

	t := &c.TOTP
	switch {
	case t.Issuer == "":
		p.bad(scope{}, "totp.issuer", t.Issuer, "must not be empty")
	case strings.Contains(t.Issuer, ":"):
		p.bad(scope{}, "totp.issuer", t.Issuer, "must not contain ':' (it separates issuer and account in the otpauth:// label)")
	case strings.IndexFunc(t.Issuer, unicode.IsControl) >= 0 || !utf8.ValidString(t.Issuer):
		p.bad(scope{}, "totp.issuer", t.Issuer, "must be printable text")
	}
	if up := strings.ToUpper(t.Algorithm); slices.Contains(algorithms, up) {
		t.Algorithm = up
	} else {
		p.bad(scope{}, "totp.algorithm", t.Algorithm, "must be one of %s", strings.Join(algorithms, ", "))
	}
	if t.Digits != 6 && t.Digits != 8 {
		p.bad(scope{}, "totp.digits", t.Digits, "must be 6 or 8")
	}
	if t.Period.Duration%time.Second != 0 {
		p.bad(scope{}, "totp.period", t.Period, "must be whole seconds")
	}
	durationRange(p, scope{}, "totp.period", t.Period, minPeriod, maxPeriod)
	intRange(p, scope{}, "totp.skew", t.Skew, 0, maxSkew)
	durationRange(p, scope{}, "totp.activation_delay", t.ActivationDelay, 0, maxActivation)

	intRange(p, scope{}, "lockout.max_failures", c.Lockout.MaxFailures, 1, maxFailures)
	durationRange(p, scope{}, "lockout.duration", c.Lockout.Duration, minLockout, maxLockout)

	oneOf(p, scope{}, "policy.default", c.Policy.Default, policies)
	c.Policy.TrustedPrefixes = nil
	if len(c.Policy.TrustedNetworks) == 0 {
		c.Policy.TrustedNetworks = nil // `= []` and no key mean the same
	}
	for _, n := range c.Policy.TrustedNetworks {
		pfx, msg := parseAddress(n)
		if msg != "" {
			p.bad(scope{}, "policy.trusted_networks", n, "%s", msg)
			continue
		}
		c.Policy.TrustedPrefixes = append(c.Policy.TrustedPrefixes, pfx)
	}
	durationRange(p, scope{}, "audit.retention", c.Audit.Retention, minRetention, maxRetention)

	if c.Metrics.Listen != "" {
		checkListen(p, "metrics.listen", c.Metrics.Listen)
	}
	oneOf(p, scope{}, "log.level", c.Log.Level, logLevels)
	oneOf(p, scope{}, "log.format", c.Log.Format, logFormats)
	c.validateEnrollment(p) // [enrollment] and [smtp]

	c.validateClients(p)
	c.validateFirstFactor(p) // [first_factor], after the clients that may use a backend
}

func (c *Config) validateClients(p *problems) {
	names := make(map[string]int)      // name -> first client with it
	nets := make(map[netip.Prefix]int) // prefix -> first client with it
	for i := range c.Clients {
		cl := &c.Clients[i]
		where := elemScope("client", i, cl.Name)

		switch {
		case cl.Name == "":
			p.add(where, "name", "name is required")
		case !validName(cl.Name):
			p.bad(where, "name", cl.Name, "must be letters, digits, '.', '_' and '-' only")
		}
		if j, dup := names[cl.Name]; dup && cl.Name != "" {
			p.bad(where, "name", cl.Name, "client #%d and client #%d have this name; names must be unique", j+1, i+1)
		} else {
			names[cl.Name] = i
		}

		if cl.Address == "" {
			p.add(where, "address", "address is required (an IP address or a CIDR network)")
		} else if pfx, msg := parseAddress(cl.Address); msg != "" {
			p.bad(where, "address", cl.Address, "%s", msg)
		} else {
			cl.Prefix = pfx
			if j, dup := nets[pfx]; dup {
				other := elemLabel("client", j, c.Clients[j].Name)
				if other == where.label {
					other = fmt.Sprintf("client #%d", j+1)
				}
				p.bad(where, "address", cl.Address, "same network %s as %s; each network may belong to one client only", pfx, other)
			} else {
				nets[pfx] = i
			}
		}

		c.loadSecret(p, where, cl)

		if cl.Mode == "" {
			cl.Mode = ModeAppend
		}
		oneOf(p, where, "mode", cl.Mode, modes)
		switch {
		case cl.Separator == "":
		case cl.Mode == ModeOTP || cl.Mode == ModeChallenge:
			p.bad(where, "separator", cl.Separator, "only allowed with mode = %q or %q", ModeAppend, ModeAuto)
		case utf8.RuneCountInString(cl.Separator) > maxSeparator:
			p.bad(where, "separator", cl.Separator, "must be at most %d characters", maxSeparator)
		case strings.IndexFunc(cl.Separator, unicode.IsDigit) >= 0:
			p.bad(where, "separator", cl.Separator, "must not contain digits (they would be read as part of the code)")
		case strings.IndexFunc(cl.Separator, unicode.IsControl) >= 0 || !utf8.ValidString(cl.Separator):
			p.bad(where, "separator", cl.Separator, "must be printable text")
		}

		if cl.RequireMessageAuthenticator == nil {
			on := true
			cl.RequireMessageAuthenticator = &on
		}
		if cl.Policy != "" {
			oneOf(p, where, "policy", cl.Policy, policies)
		}
		if cl.FirstFactor != "" {
			oneOf(p, where, "first_factor", cl.FirstFactor, Backends)
		}
		switch {
		case cl.ChallengePrompt == "":
			p.add(where, "challenge_prompt", "challenge_prompt must not be empty")
		case len(cl.ChallengePrompt) > maxPrompt:
			p.bad(where, "challenge_prompt", cl.ChallengePrompt, "must be at most %d bytes", maxPrompt)
		case !utf8.ValidString(cl.ChallengePrompt) || strings.IndexFunc(cl.ChallengePrompt, unicode.IsControl) >= 0:
			p.bad(where, "challenge_prompt", cl.ChallengePrompt, "must be printable text")
		}
		durationRange(p, where, "challenge_ttl", cl.ChallengeTTL, minChallengeTTL, maxChallengeTTL)
	}
}

// loadSecret fills cl.SecretBytes from secret or secret_file (already
// resolved against the config directory). Secrets never go into messages.
func (c *Config) loadSecret(p *problems, where scope, cl *Client) {
	switch {
	case cl.Secret != "" && cl.SecretFile != "":
		p.add(where, "secret", "both secret and secret_file are set; set only one")
	case cl.SecretFile != "":
		b, mode, err := readSecretFile(cl.SecretFile)
		if err != nil {
			p.bad(where, "secret_file", cl.SecretFile, "%v", err)
			return
		}
		cl.SecretBytes = b
		if mode&0o004 != 0 {
			c.loadWarnings = append(c.loadWarnings, fmt.Sprintf(
				"%s: secret_file %s can be read by every user (mode %04o); chmod 600 it",
				where.label, show(cl.SecretFile), mode.Perm()))
		}
	case cl.Secret != "":
		cl.SecretBytes = []byte(cl.Secret)
	default:
		p.add(where, "secret", "no secret: set secret or secret_file")
	}
}

// readSecretFile returns the content of the file without trailing newlines.
// Its errors do not repeat the path (the caller shows it).
func readSecretFile(path string) ([]byte, fs.FileMode, error) {
	// Stat first: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, pathless(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, pathless(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, 0, pathless(err)
	}
	if len(b) > maxSecretFile {
		return nil, 0, fmt.Errorf("file is larger than %d bytes; is it the right file?", maxSecretFile)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, 0, errors.New("file is empty")
	}
	return b, fi.Mode(), nil
}

// pathless drops the path from an *fs.PathError: "no such file or directory".
func pathless(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// parseAddress parses a client address: a CIDR network or a bare IP address
// (a network of that one address). IPv4-mapped IPv6 addresses become IPv4.
// On failure it returns what is wrong.
func parseAddress(s string) (netip.Prefix, string) {
	const want = `must be an IP address or a CIDR network such as "192.0.2.10", "192.0.2.0/24" or "2001:db8::/32"`
	if strings.Contains(s, "%") {
		return netip.Prefix{}, "must not have an IPv6 zone"
	}
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if pfx, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, want
		}
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, want
		}
		a = a.Unmap()
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	return pfx.Masked(), ""
}

// validName reports whether s is made of [A-Za-z0-9._-].
func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

// checkListen checks a host:port listen address. The host may be empty (all
// interfaces), an IP address or a host name; port 0 picks a free port.
func checkListen(p *problems, key, s string) {
	const want = `must be host:port such as "127.0.0.1:1812", "[::1]:1812" or ":1812"`
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		p.bad(scope{}, key, s, want)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.bad(scope{}, key, s, "port must be a number from 0 to 65535")
		return
	}
	if host == "" {
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		p.bad(scope{}, key, s, "host must be an IP address or a host name")
	}
}

// validHostname reports whether s is a syntactically valid DNS name.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func intRange(p *problems, where scope, key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.bad(where, key, v, "must be from %d to %d", lo, hi)
	}
}

func durationRange(p *problems, where scope, key string, v Duration, lo, hi time.Duration) {
	if v.Duration < lo || v.Duration > hi {
		p.bad(where, key, v, "must be from %s to %s", fmtDuration(lo), fmtDuration(hi))
	}
}

func oneOf(p *problems, where scope, key, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		p.bad(where, key, v, "must be one of %s", strings.Join(allowed, ", "))
	}
}

// Warnings returns what is allowed but probably not wanted, one sentence
// each, for the log at start-up and for check-config. They never contain a
// secret.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.Clients) == 0 {
		w = append(w, "no [[client]] is configured: every RADIUS request will be dropped")
	}
	if c.Policy.Default == PolicyDisabled {
		w = append(w, `policy.default = "disabled": users and clients without their own policy get no second factor`)
	}
	for i, cl := range c.Clients {
		where := elemLabel("client", i, cl.Name)
		n := len(cl.SecretBytes)
		if n == 0 {
			n = len(cl.Secret)
		}
		if n < minSecret {
			w = append(w, fmt.Sprintf("%s: secret is %d bytes; use at least %d random bytes", where, n, minSecret))
		}
		if !cl.RequiresMessageAuthenticator() {
			w = append(w, where+": require_message_authenticator = false: requests without Message-Authenticator are answered, "+
				"which exposes this client to forged replies (Blast-RADIUS, CVE-2024-3596)")
		}
		if given, err := netip.ParsePrefix(cl.Address); err == nil && given != given.Masked() {
			w = append(w, fmt.Sprintf("%s: address %s has host bits set; it means %s", where, show(cl.Address), given.Masked()))
		}
		if cl.Prefix.IsValid() && cl.Prefix.Bits() == 0 {
			w = append(w, fmt.Sprintf("%s: address %s accepts requests from every address", where, show(cl.Address)))
		}
	}
	w = append(w, c.enrollmentWarnings()...)
	w = append(w, c.firstFactorWarnings()...)
	return append(w, c.loadWarnings...)
}

// Limits and allowed values of [enrollment] and [smtp].
const (
	minLinkTTL     = 5 * time.Minute
	maxLinkTTL     = 30 * 24 * time.Hour
	maxAttempts    = 100
	minAPIToken    = 32 // bytes
	maxContact     = 200
	minSMTPTimeout = time.Second
	maxSMTPTimeout = 5 * time.Minute
)

var smtpTLSModes = []string{SMTPStartTLS, SMTPImplicit, SMTPNone}

// validateEnrollment checks [enrollment] and [smtp], reads api_token_file
// and password_file, and parses trusted_proxies.
func (c *Config) validateEnrollment(p *problems) {
	e := &c.Enrollment
	if e.Listen != "" {
		checkListen(p, "enrollment.listen", e.Listen)
		if e.PublicURL == "" {
			p.add(scope{}, "enrollment.public_url", `enrollment.public_url must be set when enrollment.listen is: links are built from it (e.g. "https://radotp.example.org")`)
		}
	}
	if e.PublicURL != "" {
		if msg := checkPublicURL(e.PublicURL); msg != "" {
			p.bad(scope{}, "enrollment.public_url", e.PublicURL, "%s", msg)
		} else {
			e.PublicURL = strings.TrimRight(e.PublicURL, "/")
		}
	}
	switch {
	case (e.CertFile == "") != (e.KeyFile == ""):
		p.add(scope{}, "enrollment.cert_file", "enrollment.cert_file and enrollment.key_file: set both (HTTPS) or neither")
	case e.CertFile != "":
		for _, f := range []struct{ key, path string }{{"enrollment.cert_file", e.CertFile}, {"enrollment.key_file", e.KeyFile}} {
			if fi, err := os.Stat(f.path); err != nil {
				p.bad(scope{}, f.key, f.path, "%v", pathless(err))
			} else if !fi.Mode().IsRegular() {
				p.bad(scope{}, f.key, f.path, "not a regular file")
			}
		}
	}
	durationRange(p, scope{}, "enrollment.link_ttl", e.LinkTTL, minLinkTTL, maxLinkTTL)
	intRange(p, scope{}, "enrollment.max_attempts", e.MaxAttempts, 1, maxAttempts)
	if e.SelfService == nil {
		e.SelfService = new(false)
	}
	if e.MailLinkWhenNotEnrolled == nil {
		e.MailLinkWhenNotEnrolled = new(false)
	}
	e.APIToken = nil
	if e.APITokenFile != "" {
		b, mode, err := readSecretFile(e.APITokenFile)
		switch {
		case err != nil:
			p.bad(scope{}, "enrollment.api_token_file", e.APITokenFile, "%v", err)
		case len(b) < minAPIToken:
			p.bad(scope{}, "enrollment.api_token_file", e.APITokenFile,
				"the token must be at least %d characters; make one with `openssl rand -hex 32`", minAPIToken)
		case strings.IndexFunc(string(b), func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			p.bad(scope{}, "enrollment.api_token_file", e.APITokenFile, "the token must be printable ASCII without spaces (it is sent in an HTTP header)")
		default:
			e.APIToken = b
			if mode&0o004 != 0 {
				c.loadWarnings = append(c.loadWarnings, fmt.Sprintf(
					"enrollment.api_token_file %s can be read by every user (mode %04o); chmod 600 it", show(e.APITokenFile), mode.Perm()))
			}
		}
	}
	switch {
	case e.SupportContact == "":
		p.add(scope{}, "enrollment.support_contact", `enrollment.support_contact must not be empty (e.g. "the IT service desk, help@example.org")`)
	case len(e.SupportContact) > maxContact:
		p.bad(scope{}, "enrollment.support_contact", e.SupportContact, "must be at most %d bytes", maxContact)
	case !utf8.ValidString(e.SupportContact) || strings.IndexFunc(e.SupportContact, unicode.IsControl) >= 0:
		p.bad(scope{}, "enrollment.support_contact", e.SupportContact, "must be printable text on one line")
	}
	e.TrustedProxyPrefixes = nil
	if len(e.TrustedProxies) == 0 {
		e.TrustedProxies = nil // `= []` and no key mean the same
	}
	for _, n := range e.TrustedProxies {
		pfx, msg := parseAddress(n)
		if msg != "" {
			p.bad(scope{}, "enrollment.trusted_proxies", n, "%s", msg)
			continue
		}
		e.TrustedProxyPrefixes = append(e.TrustedProxyPrefixes, pfx)
	}
	if e.MailWhenNotEnrolled() {
		if c.SMTP.Host == "" {
			p.add(scope{}, "enrollment.mail_link_when_not_enrolled", "enrollment.mail_link_when_not_enrolled = true needs [smtp] host: without it no link could be mailed")
		}
		if e.PublicURL == "" {
			p.add(scope{}, "enrollment.public_url", "enrollment.public_url must be set for enrollment.mail_link_when_not_enrolled: mailed links are built from it")
		}
	}

	s := &c.SMTP
	intRange(p, scope{}, "smtp.port", s.Port, 1, 65535)
	oneOf(p, scope{}, "smtp.tls", s.TLS, smtpTLSModes)
	durationRange(p, scope{}, "smtp.timeout", s.Timeout, minSMTPTimeout, maxSMTPTimeout)
	s.Password = nil
	if s.Host == "" {
		return
	}
	if _, err := netip.ParseAddr(s.Host); err != nil && !validHostname(s.Host) {
		p.bad(scope{}, "smtp.host", s.Host, "must be a host name or an IP address")
	}
	if s.From == "" {
		p.add(scope{}, "smtp.from", `smtp.from must be set when smtp.host is (e.g. "radotp@example.org")`)
	} else if a, err := mail.ParseAddress(s.From); err != nil || strings.ContainsAny(s.From, "\r\n") || a.Address == "" {
		p.bad(scope{}, "smtp.from", s.From, `must be an e-mail address such as "radotp@example.org" or "radotp <radotp@example.org>"`)
	}
	switch {
	case s.Username != "" && s.PasswordFile == "":
		p.add(scope{}, "smtp.password_file", "smtp.password_file must be set when smtp.username is")
	case s.Username == "" && s.PasswordFile != "":
		p.add(scope{}, "smtp.username", "smtp.username must be set when smtp.password_file is")
	case s.PasswordFile != "":
		b, mode, err := readSecretFile(s.PasswordFile)
		if err != nil {
			p.bad(scope{}, "smtp.password_file", s.PasswordFile, "%v", err)
			break
		}
		s.Password = b
		if mode&0o004 != 0 {
			c.loadWarnings = append(c.loadWarnings, fmt.Sprintf(
				"smtp.password_file %s can be read by every user (mode %04o); chmod 600 it", show(s.PasswordFile), mode.Perm()))
		}
	}
	if s.TLS == SMTPNone && s.Username != "" && !isLoopbackHost(s.Host) {
		p.bad(scope{}, "smtp.tls", s.TLS, "would send the SMTP password in the clear to %s; use starttls or implicit", s.Host)
	}
}

// checkPublicURL returns what is wrong with an enrollment.public_url, or "".
func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return `must be an absolute http:// or https:// URL such as "https://radotp.example.org"`
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "must not have a query (?) or a fragment (#)"
	}
	return ""
}

// isLoopbackHost reports whether host is "localhost" (in any case, with or
// without the root's trailing dot: host names are case-insensitive) or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// enrollmentWarnings returns what is allowed in [enrollment] and [smtp] but
// probably not wanted.
func (c *Config) enrollmentWarnings() []string {
	var w []string
	e := c.Enrollment
	if e.Listen == "" {
		if e.SelfServiceOn() {
			w = append(w, "enrollment.self_service = true, but enrollment.listen is empty: there is no enrollment site to log in to")
		}
		if e.APITokenFile != "" {
			w = append(w, "enrollment.api_token_file is set, but enrollment.listen is empty: there is no enrollment site to serve the API")
		}
		return w
	}
	u, err := url.Parse(e.PublicURL)
	if err != nil {
		return w
	}
	host, _, _ := net.SplitHostPort(e.Listen)
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		w = append(w, fmt.Sprintf("enrollment.public_url %s is http://: users would get their TOTP key over the network without TLS; "+
			"serve HTTPS (enrollment.cert_file and key_file) or put a TLS proxy in front and use its https:// URL", show(e.PublicURL)))
	}
	if e.CertFile == "" && host != "" && !isLoopbackHost(host) && u.Scheme == "https" {
		w = append(w, "enrollment.listen is not a loopback address and the site serves plain HTTP: make sure only the TLS proxy of enrollment.public_url can reach it")
	}
	if e.CertFile != "" && u.Scheme == "http" {
		w = append(w, "enrollment.cert_file is set, so the site serves HTTPS, but enrollment.public_url starts with http://")
	}
	return w
}
