package firstfactor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// LDAPOptions configure an LDAP backend. The user is found in one of two ways:
//
//   - BindDNTemplate: the user's DN is the template with %s replaced by the
//     user name, DN-escaped. Names holding a character that is special in
//     a DN (, + = " \ < > ; or a leading # or space) are rejected before
//     anything is sent, so a name can never point at another entry.
//   - BaseDN and Filter: the user is searched (as BindDN, or anonymously)
//     with %s in Filter replaced by the user name, filter-escaped (RFC 4515),
//     so * ( ) \ in a name are matched literally. Exactly one entry must
//     match.
//
// Then radotp binds as the user's DN with the password: the directory checks
// it, with its own password policy.
type LDAPOptions struct {
	// URLs are ldap:// or ldaps:// URLs (scheme://host[:port]), tried in
	// order; a server that failed is tried last for 30 seconds.
	URLs []string
	// StartTLS upgrades ldap:// connections before anything else is sent.
	StartTLS bool
	// RootCAs verify the server certificate (ldaps:// and StartTLS); nil
	// means the system's roots. The host name of the URL must match it.
	RootCAs *x509.CertPool

	BindDNTemplate string // e.g. "uid=%s,ou=people,dc=example,dc=org"
	BaseDN         string // search mode: where users are searched (whole subtree)
	Filter         string // search mode: e.g. "(uid=%s)"

	// BindDN and BindPassword are a service account for the search and the
	// group checks. Without one, the search is anonymous and groups are
	// read as the user.
	BindDN       string
	BindPassword string

	// GroupAttribute is the group attribute that lists members: "member"
	// (the default) and "uniqueMember" hold DNs, "memberUid" (posixGroup)
	// holds user names. A matching rule may follow, e.g. Active Directory's
	// "member:1.2.840.113556.1.4.1941:" for nested groups.
	GroupAttribute string
	// RequiredGroup, if set, is the DN of the group a user must be in: other
	// users get OK false with Reason user_disabled, after their password was
	// checked.
	RequiredGroup string
	// ExemptGroup, if set, is the DN of a group whose members get Policy
	// optional: no code unless they have a token.
	ExemptGroup string

	// Timeout bounds connecting, the TLS handshake and each operation.
	// Default 5s.
	Timeout time.Duration
	// PoolSize is the most connections open at once; callers beyond it wait
	// (within their context). Default 8.
	PoolSize int
	Logger   *slog.Logger
}

// LDAP checks passwords by binding to a directory. Create it with NewLDAP;
// it is safe for concurrent use.
type LDAP struct {
	o        LDAPOptions
	urls     []*url.URL
	tmplRDNs int // RDNs of the template DN
	servers  *servers
	log      *slog.Logger

	slots  chan struct{} // one per connection in use or idle
	mu     sync.Mutex
	idle   []*conn
	closed bool
	dials  atomic.Int64 // connections opened, for tests
}

type conn struct {
	*ldap.Conn
	server   int  // index into LDAP.urls
	service  bool // bound as the service account
	reused   bool // taken from the idle list (it may have died meanwhile)
	lastUsed time.Time
}

// idleTimeout: an idle connection older than this is closed rather than
// reused (directories and firewalls drop idle connections silently).
const idleTimeout = time.Minute

// NewLDAP checks o and returns the backend. It does not connect: a directory
// that is down at start-up is not an error, it is ErrFirstFactorUnavailable
// on each check until it is back.
func NewLDAP(o LDAPOptions) (*LDAP, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 8
	}
	if o.GroupAttribute == "" {
		o.GroupAttribute = "member"
	}
	l := &LDAP{o: o, log: orDefault(o.Logger), slots: make(chan struct{}, o.PoolSize)}
	if len(o.URLs) == 0 {
		return nil, errors.New("firstfactor: ldap: no URLs")
	}
	for _, s := range o.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
			return nil, fmt.Errorf("firstfactor: ldap: %q is not an ldap:// or ldaps:// URL", s)
		}
		if u.Scheme == "ldaps" && o.StartTLS {
			return nil, fmt.Errorf("firstfactor: ldap: StartTLS with %q, which is ldaps:// already", s)
		}
		l.urls = append(l.urls, u)
	}
	l.servers = newServers(len(l.urls))

	switch {
	case (o.BindDNTemplate == "") == (o.BaseDN == ""):
		return nil, errors.New("firstfactor: ldap: set either a bind DN template or a base DN and filter")
	case o.BindDNTemplate != "":
		if strings.Count(o.BindDNTemplate, "%s") != 1 {
			return nil, errors.New("firstfactor: ldap: the bind DN template must contain %s once")
		}
		dn, err := ldap.ParseDN(strings.Replace(o.BindDNTemplate, "%s", "x", 1))
		if err != nil || len(dn.RDNs) == 0 {
			return nil, fmt.Errorf("firstfactor: ldap: bind DN template %q is not a DN: %v", o.BindDNTemplate, err)
		}
		l.tmplRDNs = len(dn.RDNs)
	default:
		if _, err := ldap.ParseDN(o.BaseDN); err != nil {
			return nil, fmt.Errorf("firstfactor: ldap: base DN %q: %w", o.BaseDN, err)
		}
		if strings.Count(o.Filter, "%s") != 1 {
			return nil, errors.New("firstfactor: ldap: the filter must contain %s once")
		}
		if _, err := ldap.CompileFilter(strings.Replace(o.Filter, "%s", "x", 1)); err != nil {
			return nil, fmt.Errorf("firstfactor: ldap: filter %q: %w", o.Filter, err)
		}
	}
	if (o.BindDN == "") != (o.BindPassword == "") {
		return nil, errors.New("firstfactor: ldap: a service account needs both a bind DN and a password")
	}
	for _, dn := range []string{o.BindDN, o.RequiredGroup, o.ExemptGroup} {
		if dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			return nil, fmt.Errorf("firstfactor: ldap: %q is not a DN: %w", dn, err)
		}
	}
	if _, err := ldap.CompileFilter("(" + o.GroupAttribute + "=x)"); err != nil {
		return nil, fmt.Errorf("firstfactor: ldap: group attribute %q: %w", o.GroupAttribute, err)
	}
	return l, nil
}

// OneCheckPerRequest is true: a directory (AD) counts failed binds against its own lockout policy, so a request gets one bind, never two
// (verifier.OneCheckPerRequest).
func (l *LDAP) OneCheckPerRequest() bool { return true }

// Check binds as the user with password; see LDAPOptions and the package
// comment for what is a result and what is an error. u is not used.
func (l *LDAP) Check(ctx context.Context, name string, _ *store.User, password []byte) (verifier.FirstFactorResult, error) {
	if len(password) == 0 {
		// An empty password would be an unauthenticated bind, which
		// succeeds without checking anything (RFC 4513 5.1.2).
		return rejected, nil
	}
	if !plausibleName(name) {
		return unknownUser, nil
	}
	var dn string
	if l.o.BindDNTemplate != "" {
		var ok bool
		if dn, ok = l.templateDN(name); !ok {
			l.log.Debug("firstfactor: ldap: user name cannot be part of a DN; rejected", "user", name)
			return unknownUser, nil
		}
	}
	var res verifier.FirstFactorResult
	err := l.do(ctx, func(c *conn) (err error) {
		res, err = l.check(c, name, dn, string(password))
		return err
	})
	if err != nil {
		return rejected, err
	}
	return res, nil
}

// Close closes the idle connections; connections in use are closed when
// their check ends. Checks after Close are unavailable.
func (l *LDAP) Close() error {
	l.mu.Lock()
	l.closed = true
	idle := l.idle
	l.idle = nil
	l.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return nil
}

// plausibleName rejects names no directory entry has: empty, too long, not
// UTF-8, or with control characters (NUL included).
func plausibleName(name string) bool {
	return name != "" && len(name) <= 256 && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0
}

// dnSpecials are the characters that have a meaning in a DN (RFC 4514).
const dnSpecials = `,+="\<>;`

// templateDN returns the user's DN from the template, or false if the name
// holds a character that is special in a DN.
func (l *LDAP) templateDN(name string) (string, bool) {
	if strings.ContainsAny(name, dnSpecials) || name[0] == '#' || name[0] == ' ' || name[len(name)-1] == ' ' {
		return "", false
	}
	dn := strings.Replace(l.o.BindDNTemplate, "%s", ldap.EscapeDN(name), 1)
	// Belt and braces: the DN must have the template's shape.
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) != l.tmplRDNs {
		return "", false
	}
	return dn, true
}

// check runs one password check on c. Errors that are a server's fault
// (network, timeout, busy) are returned as they are, for do to retry on
// another connection; others are wrapped unavailable.
func (l *LDAP) check(c *conn, name, dn, password string) (verifier.FirstFactorResult, error) {
	if dn == "" {
		if err := l.bindService(c); err != nil {
			return rejected, err
		}
		var res verifier.FirstFactorResult
		var err error
		if dn, res, err = l.find(c, name); err != nil || dn == "" {
			return res, err
		}
	}
	c.service = false
	if err := c.Bind(dn, password); err != nil {
		switch {
		case ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
			ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax, ldap.LDAPResultInsufficientAccessRights):
			return rejected, nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform):
			// Account restrictions (disabled, expired) on some directories.
			l.log.Warn("firstfactor: ldap: directory unwilling to bind the user; rejected", "user", name, "err", err)
			return rejected, nil
		case ldap.IsErrorAnyOf(err, ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired):
			return rejected, unavailable("ldap", fmt.Errorf("the directory wants TLS for binds (use ldaps:// or start_tls): %w", err))
		}
		return rejected, err
	}
	return l.groups(c, name, dn)
}

// bindService binds c as the service account (or anonymously, when there is
// none), unless c is bound so already.
func (l *LDAP) bindService(c *conn) error {
	if c.service {
		return nil
	}
	if l.o.BindDN == "" {
		// Anonymous search: a pooled connection may still be bound as the
		// last user checked on it; the search must not run as them.
		if err := c.UnauthenticatedBind(""); err != nil {
			return err
		}
		c.service = true
		return nil
	}
	if err := c.Bind(l.o.BindDN, l.o.BindPassword); err != nil {
		if ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
			ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax) {
			l.log.Error("firstfactor: ldap: the directory rejects the service account (bind_dn, bind_password_file)", "err", err)
			return unavailable("ldap", fmt.Errorf("service account bind: %w", err))
		}
		return err
	}
	c.service = true
	return nil
}

// find searches the user's entry; dn "" with the result to return when there
// is not exactly one.
func (l *LDAP) find(c *conn, name string) (string, verifier.FirstFactorResult, error) {
	filter := strings.Replace(l.o.Filter, "%s", ldap.EscapeFilter(name), 1)
	req := ldap.NewSearchRequest(l.o.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, l.timeLimit(), false, filter, []string{"1.1"}, nil)
	sr, err := c.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || err == nil && len(sr.Entries) > 1:
		l.log.Error("firstfactor: ldap: the filter matches several entries for one user; make it unique", "user", name, "filter", l.o.Filter)
		return "", rejected, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return "", rejected, unavailable("ldap", fmt.Errorf("base DN %q does not exist: %w", l.o.BaseDN, err))
	case err != nil:
		return "", rejected, err
	case len(sr.Entries) == 0 || sr.Entries[0].DN == "":
		return "", unknownUser, nil
	}
	return sr.Entries[0].DN, passed, nil
}

// groups checks the required and exempt groups of a user whose password
// was right.
func (l *LDAP) groups(c *conn, name, dn string) (verifier.FirstFactorResult, error) {
	if l.o.RequiredGroup == "" && l.o.ExemptGroup == "" {
		return passed, nil
	}
	if err := l.bindService(c); err != nil {
		return rejected, err
	}
	if l.o.RequiredGroup != "" {
		in, err := l.member(c, l.o.RequiredGroup, name, dn)
		if err != nil {
			return rejected, err
		}
		if !in {
			return userDisabled, nil
		}
	}
	if l.o.ExemptGroup != "" {
		in, err := l.member(c, l.o.ExemptGroup, name, dn)
		if err != nil {
			return rejected, err
		}
		if in {
			return exempt, nil
		}
	}
	return passed, nil
}

// member reports whether the group lists the user, by a base search on the
// group with the member value filter-escaped.
func (l *LDAP) member(c *conn, group, name, dn string) (bool, error) {
	value := dn
	if attr, _, _ := strings.Cut(l.o.GroupAttribute, ":"); strings.EqualFold(attr, "memberUid") {
		value = name
	}
	filter := "(" + l.o.GroupAttribute + "=" + ldap.EscapeFilter(value) + ")"
	req := ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, l.timeLimit(), false, filter, []string{"1.1"}, nil)
	sr, err := c.Search(req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		l.log.Warn("firstfactor: ldap: group does not exist (or cannot be read); nobody is a member", "group", group)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(sr.Entries) > 0, nil
}

// timeLimit is the server-side time limit of searches, in whole seconds.
func (l *LDAP) timeLimit() int {
	return max(1, int((l.o.Timeout+time.Second-1)/time.Second))
}

// retryable reports whether err is the server's or the network's fault, so
// that another connection (maybe to another server) may do better.
func retryable(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultTimeout, ldap.LDAPResultServerDown,
		ldap.LDAPResultConnectError, ldap.LDAPResultOther, ldap.ErrorUnexpectedResponse, ldap.ErrorMalformedPacket)
}

// do runs fn on a pooled connection. The context ending closes the
// connection, which ends any operation in progress. An error of the server
// (see retryable) marks the server down and fn runs once more on a new
// connection, if that can help: the failed one had been idle in the pool
// (the server may have closed it), or there is another server to fail over
// to.
func (l *LDAP) do(ctx context.Context, fn func(*conn) error) error {
	var errs []error
	for attempt := 0; ; attempt++ {
		c, err := l.get(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = fn(c)
		interrupted := !stop()
		if err == nil {
			l.servers.answered(c.server)
			l.put(c, !interrupted)
			return nil
		}
		l.put(c, false)
		if ctx.Err() != nil {
			return ctxErr(ctx, "ldap")
		}
		if errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			return err
		}
		server := l.urls[c.server].Redacted()
		if !retryable(err) {
			return unavailable("ldap", fmt.Errorf("%s: %w", server, err))
		}
		if !c.reused { // an idle connection may just have been closed by the server
			l.servers.failed(c.server)
		}
		errs = append(errs, fmt.Errorf("%s: %w", server, err))
		if attempt > 0 || !c.reused && len(l.urls) == 1 {
			return unavailable("ldap", errors.Join(errs...))
		}
		l.log.Warn("firstfactor: ldap: server failed; trying again", "server", server, "err", err)
	}
}

// get takes an idle connection or opens one, waiting for a free slot of the
// pool within ctx.
func (l *LDAP) get(ctx context.Context) (*conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxErr(ctx, "ldap")
	}
	var stale []*conn
	var c *conn
	l.mu.Lock()
	closed := l.closed
	for !closed && c == nil && len(l.idle) > 0 {
		last := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if last.IsClosing() || time.Since(last.lastUsed) > idleTimeout {
			stale = append(stale, last)
			continue
		}
		c = last
		c.reused = true
	}
	l.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
	if closed {
		<-l.slots
		return nil, unavailable("ldap", errClosed)
	}
	if c != nil {
		return c, nil
	}
	c, err := l.dial(ctx)
	if err != nil {
		<-l.slots
		return nil, err
	}
	return c, nil
}

// put returns c to the pool if reuse is true, else closes it, and frees
// its slot.
func (l *LDAP) put(c *conn, reuse bool) {
	c.lastUsed = time.Now()
	l.mu.Lock()
	if reuse && !l.closed {
		l.idle = append(l.idle, c)
		c = nil
	}
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
	<-l.slots
}

// dial connects to the first server (in failover order) that answers.
func (l *LDAP) dial(ctx context.Context) (*conn, error) {
	var errs []error
	for _, i := range l.servers.order() {
		c, err := l.dialOne(ctx, i)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctxErr(ctx, "ldap")
		}
		l.servers.failed(i)
		server := l.urls[i].Redacted()
		l.log.Warn("firstfactor: ldap: cannot connect", "server", server, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", server, err))
	}
	return nil, unavailable("ldap", errors.Join(errs...))
}

func (l *LDAP) dialOne(ctx context.Context, i int) (*conn, error) {
	u := l.urls[i]
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = ldap.DefaultLdapPort
		if u.Scheme == "ldaps" {
			port = ldap.DefaultLdapsPort
		}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	isTLS := u.Scheme == "ldaps"
	if isTLS {
		tc := tls.Client(nc, l.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		nc = tc
	}
	lc := ldap.NewConn(nc, isTLS)
	lc.Start()
	lc.SetTimeout(l.o.Timeout)
	if l.o.StartTLS {
		stop := context.AfterFunc(ctx, func() { lc.Close() })
		err := lc.StartTLS(l.tlsConfig(host))
		if !stop() && err == nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			lc.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	l.dials.Add(1)
	return &conn{Conn: lc, server: i}, nil
}

func (l *LDAP) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: l.o.RootCAs, MinVersion: tls.VersionTLS12}
}
