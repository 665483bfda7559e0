package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// First-factor backends: where the password is checked.
const (
	BackendLocal  = "local"  // the argon2id hash in radotp's database
	BackendLDAP   = "ldap"   // a bind to an LDAP directory or Active Directory
	BackendRadius = "radius" // an Access-Request to an upstream RADIUS server
	BackendNone   = "none"   // not checked: the gateway checked the password
)

// Backends lists the allowed values of first_factor.backend and of a
// client's first_factor.
var Backends = []string{BackendLocal, BackendLDAP, BackendRadius, BackendNone}

// FirstFactor says where passwords are checked.
type FirstFactor struct {
	Backend         string         `toml:"backend"`           // local, ldap, radius or none; default "local"
	AutoCreateUsers *bool          `toml:"auto_create_users"` // create unknown users the backend accepts; default false
	LDAP            LDAP           `toml:"ldap"`              // backend ldap
	Radius          UpstreamRadius `toml:"radius"`            // backend radius
}

// AutoCreate reports whether a user radotp does not know but the backend
// accepts is created. Unset means false.
func (f FirstFactor) AutoCreate() bool {
	return f.AutoCreateUsers != nil && *f.AutoCreateUsers
}

// LDAP configures the ldap backend. The user is found either by a DN
// template (BindDNTemplate) or by a search (BaseDN and Filter, as BindDN or
// anonymously), then bound as with the password.
type LDAP struct {
	URLs             []string `toml:"urls"`               // ldap:// or ldaps://, tried in order
	StartTLS         *bool    `toml:"start_tls"`          // StartTLS on ldap:// URLs; default false
	AllowCleartext   *bool    `toml:"allow_cleartext"`    // ldap:// without StartTLS to a non-loopback host; default false
	CAFile           string   `toml:"ca_file"`            // PEM CA certificates for TLS; "" = the system's
	BindDNTemplate   string   `toml:"bind_dn_template"`   // e.g. "uid=%s,ou=people,dc=example,dc=org"
	BindDN           string   `toml:"bind_dn"`            // service account for the search and group checks
	BindPasswordFile string   `toml:"bind_password_file"` // its password
	BaseDN           string   `toml:"base_dn"`            // search mode: where users are searched
	Filter           string   `toml:"filter"`             // search mode: %s is the escaped user name; default "(uid=%s)"
	GroupAttribute   string   `toml:"group_attribute"`    // group attribute listing members; default "member"
	RequiredGroup    string   `toml:"required_group"`     // DN; only its members may log in
	ExemptGroup      string   `toml:"exempt_group"`       // DN; its members get policy "optional"
	Timeout          Duration `toml:"timeout"`            // connect and each operation; default 5s
	PoolSize         int      `toml:"pool_size"`          // connections at most; default 8

	BindPassword []byte `toml:"-"` // content of BindPasswordFile, when the backend is used
}

// AllowsCleartext reports whether allow_cleartext is true. Unset means false.
func (l LDAP) AllowsCleartext() bool { return l.AllowCleartext != nil && *l.AllowCleartext }

// UsesStartTLS reports whether StartTLS is asked for. Unset means false.
func (l LDAP) UsesStartTLS() bool { return l.StartTLS != nil && *l.StartTLS }

// UpstreamRadius configures the radius backend.
type UpstreamRadius struct {
	Servers                     []string `toml:"servers"`                       // host:port, tried in order
	Secret                      string   `toml:"secret"`                        // shared secret; or secret_file
	SecretFile                  string   `toml:"secret_file"`                   // file holding the secret
	Timeout                     Duration `toml:"timeout"`                       // wait for a reply before resending; default 2s
	Retries                     int      `toml:"retries"`                       // resends per server; default 1
	NASIdentifier               string   `toml:"nas_identifier"`                // sent as NAS-Identifier; default "radotp"
	RequireMessageAuthenticator *bool    `toml:"require_message_authenticator"` // replies must have one; default true

	SecretBytes []byte `toml:"-"` // Secret, or the content of SecretFile, when the backend is used
}

// RequiresMessageAuthenticator reports whether replies must carry a valid
// Message-Authenticator. Unset means true.
func (r UpstreamRadius) RequiresMessageAuthenticator() bool {
	return r.RequireMessageAuthenticator == nil || *r.RequireMessageAuthenticator
}

// Limits of the first-factor values.
const (
	minBackendTimeout = 100 * time.Millisecond
	maxLDAPTimeout    = time.Minute
	maxRadiusTimeout  = 30 * time.Second
	maxPoolSize       = 256
	maxRetries        = 10
	maxNASIdentifier  = 253 // bytes: one attribute
)

func init() {
	// The upstream secret is as secret as a client's.
	sensitiveKeys["first_factor.radius.secret"] = true
}

func defaultFirstFactor() FirstFactor {
	return FirstFactor{
		Backend:         BackendLocal,
		AutoCreateUsers: new(false),
		LDAP: LDAP{
			StartTLS:       new(false),
			AllowCleartext: new(false),
			Filter:         "(uid=%s)",
			GroupAttribute: "member",
			Timeout:        Duration{5 * time.Second},
			PoolSize:       8,
		},
		Radius: UpstreamRadius{
			Timeout:                     Duration{2 * time.Second},
			Retries:                     1,
			NASIdentifier:               "radotp",
			RequireMessageAuthenticator: new(true),
		},
	}
}

// UsesBackend reports whether first_factor.backend or any client's
// first_factor is b.
func (c *Config) UsesBackend(b string) bool {
	if c.FirstFactor.Backend == b {
		return true
	}
	for _, cl := range c.Clients {
		if cl.FirstFactor == b {
			return true
		}
	}
	return false
}

func (c *Config) resolveFirstFactorPaths(baseDir string) {
	f := &c.FirstFactor
	f.LDAP.CAFile = resolve(baseDir, f.LDAP.CAFile)
	f.LDAP.BindPasswordFile = resolve(baseDir, f.LDAP.BindPasswordFile)
	f.Radius.SecretFile = resolve(baseDir, f.Radius.SecretFile)
}

// validateFirstFactor checks [first_factor]. The sections of a backend are
// checked (and their files read) only when some client uses it.
func (c *Config) validateFirstFactor(p *problems) {
	f := &c.FirstFactor
	oneOf(p, scope{}, "first_factor.backend", f.Backend, Backends)
	if f.AutoCreateUsers == nil {
		f.AutoCreateUsers = new(false)
	}
	if len(f.LDAP.URLs) == 0 {
		f.LDAP.URLs = nil // `= []` and no key mean the same
	}
	if len(f.Radius.Servers) == 0 {
		f.Radius.Servers = nil
	}
	if f.LDAP.StartTLS == nil {
		f.LDAP.StartTLS = new(false)
	}
	if f.LDAP.AllowCleartext == nil {
		f.LDAP.AllowCleartext = new(false)
	}
	if f.Radius.RequireMessageAuthenticator == nil {
		f.Radius.RequireMessageAuthenticator = new(true)
	}
	if c.UsesBackend(BackendLDAP) {
		c.validateLDAP(p)
	}
	if c.UsesBackend(BackendRadius) {
		c.validateUpstreamRadius(p)
	}
}

// groupAttr is an attribute name, optionally with a matching rule OID
// (Active Directory nested groups: "member:1.2.840.113556.1.4.1941:").
var groupAttr = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*(:[0-9]+(\.[0-9]+)*:)?$`)

func (c *Config) validateLDAP(p *problems) {
	l := &c.FirstFactor.LDAP
	const pre = "first_factor.ldap."
	if len(l.URLs) == 0 {
		p.add(scope{}, pre+"urls", pre+`urls is required with the ldap backend, e.g. ["ldaps://ldap.example.org"]`)
	}
	ldaps := false
	for _, u := range l.URLs {
		if msg := checkLDAPURL(u); msg != "" {
			p.bad(scope{}, pre+"urls", u, "%s", msg)
			continue
		}
		ldaps = ldaps || strings.HasPrefix(strings.ToLower(u), "ldaps:")
	}
	if l.UsesStartTLS() && ldaps {
		p.bad(scope{}, pre+"start_tls", true, "StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	}
	if !l.UsesStartTLS() && !l.AllowsCleartext() {
		for _, u := range l.URLs {
			if checkLDAPURL(u) == "" && strings.HasPrefix(strings.ToLower(u), "ldap:") && !loopbackURL(u) {
				p.bad(scope{}, pre+"urls", u, "would send users' passwords in clear text: use ldaps://, or start_tls = true, "+
					"or (on a network you trust with passwords) allow_cleartext = true")
			}
		}
	}
	if l.CAFile != "" {
		if fi, err := os.Stat(l.CAFile); err != nil {
			p.bad(scope{}, pre+"ca_file", l.CAFile, "%v", pathless(err))
		} else if !fi.Mode().IsRegular() {
			p.bad(scope{}, pre+"ca_file", l.CAFile, "not a regular file")
		}
	}

	switch {
	case l.BindDNTemplate != "" && l.BaseDN != "":
		p.add(scope{}, pre+"bind_dn_template", pre+"bind_dn_template and "+pre+"base_dn are both set; set one: a DN template, or a search under base_dn")
	case l.BindDNTemplate == "" && l.BaseDN == "":
		p.add(scope{}, pre+"bind_dn_template", "the ldap backend needs "+pre+"bind_dn_template (bind as a DN made from the user name) or "+pre+"base_dn (search the user, then bind)")
	case l.BindDNTemplate != "":
		if msg := checkTemplate(l.BindDNTemplate); msg != "" {
			p.bad(scope{}, pre+"bind_dn_template", l.BindDNTemplate, "%s", msg)
		} else if !strings.Contains(l.BindDNTemplate, "=") {
			p.bad(scope{}, pre+"bind_dn_template", l.BindDNTemplate, `must be a DN such as "uid=%%s,ou=people,dc=example,dc=org"`)
		}
	default:
		if msg := checkDN(l.BaseDN); msg != "" {
			p.bad(scope{}, pre+"base_dn", l.BaseDN, "%s", msg)
		}
		if msg := checkTemplate(l.Filter); msg != "" {
			p.bad(scope{}, pre+"filter", l.Filter, "%s", msg)
		} else if msg := checkFilter(l.Filter); msg != "" {
			p.bad(scope{}, pre+"filter", l.Filter, "%s", msg)
		}
	}

	switch {
	case l.BindDN != "" && l.BindPasswordFile == "":
		p.add(scope{}, pre+"bind_password_file", pre+"bind_dn is set but "+pre+"bind_password_file is not")
	case l.BindDN == "" && l.BindPasswordFile != "":
		p.add(scope{}, pre+"bind_dn", pre+"bind_password_file is set but "+pre+"bind_dn is not")
	case l.BindDN != "":
		if msg := checkDN(l.BindDN); msg != "" {
			p.bad(scope{}, pre+"bind_dn", l.BindDN, "%s", msg)
		}
		b, mode, err := readSecretFile(l.BindPasswordFile)
		if err != nil {
			p.bad(scope{}, pre+"bind_password_file", l.BindPasswordFile, "%v", err)
			break
		}
		l.BindPassword = b
		if mode&0o004 != 0 {
			c.loadWarnings = append(c.loadWarnings, fmt.Sprintf(
				"%sbind_password_file %s can be read by every user (mode %04o); chmod 600 it", pre, show(l.BindPasswordFile), mode.Perm()))
		}
	}

	if !groupAttr.MatchString(l.GroupAttribute) {
		p.bad(scope{}, pre+"group_attribute", l.GroupAttribute, `must be an attribute name such as "member", "uniqueMember" or "memberUid"`)
	}
	for _, g := range []struct{ key, dn string }{{"required_group", l.RequiredGroup}, {"exempt_group", l.ExemptGroup}} {
		if g.dn == "" {
			continue
		}
		if msg := checkDN(g.dn); msg != "" {
			p.bad(scope{}, pre+g.key, g.dn, "%s", msg)
		}
	}
	durationRange(p, scope{}, pre+"timeout", l.Timeout, minBackendTimeout, maxLDAPTimeout)
	intRange(p, scope{}, pre+"pool_size", l.PoolSize, 1, maxPoolSize)
}

// checkLDAPURL checks one ldap:// or ldaps:// URL with a host and nothing
// after it.
func checkLDAPURL(s string) string {
	const want = `must be an LDAP URL such as "ldaps://ldap.example.org" or "ldap://192.0.2.10:389"`
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.Opaque != "" {
		return want
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "must be only scheme://host[:port]; put the base DN in base_dn"
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "port must be a number from 1 to 65535"
		}
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && !validHostname(h) {
		return "host must be an IP address or a host name"
	}
	return ""
}

// checkTemplate checks that s has exactly one %s and no other % directive.
func checkTemplate(s string) string {
	if strings.Count(s, "%s") != 1 || strings.Count(s, "%") != 1 {
		return "must contain %s exactly once (where the user name goes) and no other %"
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must be printable text"
	}
	return ""
}

// checkDN is a light syntax check of a DN: attribute=value pairs. The
// directory has the last word; the backend parses it fully at start-up.
func checkDN(s string) string {
	if !strings.Contains(s, "=") || strings.HasPrefix(s, "=") {
		return `must be a DN such as "dc=example,dc=org"`
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must be printable text"
	}
	return ""
}

// checkFilter checks that a filter template is one parenthesised filter
// with balanced parentheses (escaped ones, \28 \29, are not parentheses).
func checkFilter(s string) string {
	const want = `must be an LDAP filter in parentheses, such as "(uid=%%s)" or "(&(objectClass=person)(sAMAccountName=%%s))"`
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return want
	}
	depth := 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return want
			}
		}
		if depth < 0 {
			return want
		}
	}
	if depth != 0 {
		return want
	}
	return ""
}

func (c *Config) validateUpstreamRadius(p *problems) {
	r := &c.FirstFactor.Radius
	const pre = "first_factor.radius."
	if len(r.Servers) == 0 {
		p.add(scope{}, pre+"servers", pre+`servers is required with the radius backend, e.g. ["192.0.2.20:1812"]`)
	}
	for _, s := range r.Servers {
		if msg := checkServer(s); msg != "" {
			p.bad(scope{}, pre+"servers", s, "%s", msg)
		}
	}
	switch {
	case r.Secret != "" && r.SecretFile != "":
		p.add(scope{}, pre+"secret", "both "+pre+"secret and "+pre+"secret_file are set; set only one")
	case r.SecretFile != "":
		b, mode, err := readSecretFile(r.SecretFile)
		if err != nil {
			p.bad(scope{}, pre+"secret_file", r.SecretFile, "%v", err)
			break
		}
		r.SecretBytes = b
		if mode&0o004 != 0 {
			c.loadWarnings = append(c.loadWarnings, fmt.Sprintf(
				"%ssecret_file %s can be read by every user (mode %04o); chmod 600 it", pre, show(r.SecretFile), mode.Perm()))
		}
	case r.Secret != "":
		r.SecretBytes = []byte(r.Secret)
	default:
		p.add(scope{}, pre+"secret", "the radius backend needs a secret: set "+pre+"secret or "+pre+"secret_file")
	}
	durationRange(p, scope{}, pre+"timeout", r.Timeout, minBackendTimeout, maxRadiusTimeout)
	intRange(p, scope{}, pre+"retries", r.Retries, 0, maxRetries)
	switch {
	case r.NASIdentifier == "":
		p.bad(scope{}, pre+"nas_identifier", r.NASIdentifier, "must not be empty (RFC 2865 wants NAS-Identifier or NAS-IP-Address)")
	case len(r.NASIdentifier) > maxNASIdentifier:
		p.bad(scope{}, pre+"nas_identifier", r.NASIdentifier, "must be at most %d bytes", maxNASIdentifier)
	case !utf8.ValidString(r.NASIdentifier) || strings.IndexFunc(r.NASIdentifier, unicode.IsControl) >= 0:
		p.bad(scope{}, pre+"nas_identifier", r.NASIdentifier, "must be printable text")
	}
}

// checkServer checks an upstream host:port; the port is required.
func checkServer(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return `must be host:port such as "192.0.2.20:1812" or "[2001:db8::20]:1812"`
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "port must be a number from 1 to 65535"
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return "host must be an IP address or a host name"
	}
	return ""
}

// loopbackURL reports whether an LDAP URL's host is this machine.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && isLoopbackHost(pu.Hostname())
}

// firstFactorWarnings returns what is allowed but probably unwanted in
// [first_factor].
func (c *Config) firstFactorWarnings() []string {
	var w []string
	f := c.FirstFactor
	if f.Backend == BackendNone {
		w = append(w, `first_factor.backend = "none": passwords are not checked; only the gateway's own check and the code protect logins`)
	}
	if c.UsesBackend(BackendLDAP) && !f.LDAP.UsesStartTLS() {
		for _, u := range f.LDAP.URLs {
			if strings.HasPrefix(strings.ToLower(u), "ldap:") && !loopbackURL(u) {
				w = append(w, fmt.Sprintf("first_factor.ldap.urls: %s without start_tls: passwords cross the network in clear text", show(u)))
			}
		}
	}
	if c.UsesBackend(BackendRadius) {
		r := f.Radius
		if n := len(r.SecretBytes); n > 0 && n < minSecret {
			w = append(w, fmt.Sprintf("first_factor.radius: secret is %d bytes; use at least %d random bytes", n, minSecret))
		}
		if !r.RequiresMessageAuthenticator() {
			w = append(w, "first_factor.radius.require_message_authenticator = false: replies without Message-Authenticator are believed, "+
				"which exposes logins to forged replies (Blast-RADIUS, CVE-2024-3596)")
		}
		if worst := time.Duration(len(r.Servers)*(r.Retries+1)) * r.Timeout.Duration; worst > 10*time.Second {
			w = append(w, fmt.Sprintf("first_factor.radius: a request may wait %s for upstream servers that do not answer "+
				"(servers × (retries+1) × timeout); most NAS give up sooner", fmtDuration(worst)))
		}
	}
	if f.AutoCreate() && !c.UsesBackend(BackendLDAP) && !c.UsesBackend(BackendRadius) && !c.UsesBackend(BackendNone) {
		w = append(w, "first_factor.auto_create_users = true has no effect with the local backend (unknown users have no password)")
	}
	return w
}
