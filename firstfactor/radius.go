package firstfactor

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// RadiusOptions configure an upstream RADIUS backend.
type RadiusOptions struct {
	// Servers are host:port addresses, tried in order; a server that did
	// not answer is tried last for 30 seconds.
	Servers []string
	// Secret is shared with every server.
	Secret []byte
	// Timeout is how long to wait for a reply before resending. Default 2s.
	Timeout time.Duration
	// Retries is how often a request is resent to one server (same ID and
	// authenticator, RFC 5080 2.2.1) before the next server is tried.
	Retries int
	// NASIdentifier is sent as NAS-Identifier. Default "radotp".
	NASIdentifier string
	// AllowMissingMessageAuthenticator believes replies without a
	// Message-Authenticator (only for servers that cannot send one; see
	// Blast-RADIUS, CVE-2024-3596). Replies that have one must be right.
	AllowMissingMessageAuthenticator bool
	Logger                           *slog.Logger
}

// Radius checks passwords with an Access-Request (PAP) to upstream RADIUS
// servers: Access-Accept means the password is right, Access-Reject that it
// is wrong; no valid reply from any server is ErrFirstFactorUnavailable.
// Requests carry a Message-Authenticator; replies are checked for their
// Response Authenticator and Message-Authenticator, and a reply that fails
// either is ignored as if it never came. An Access-Challenge (the upstream's
// own second factor) cannot be relayed and is a reject.
//
// Create it with NewRadius; it is safe for concurrent use. Each request uses
// its own UDP socket, so replies are never mixed up.
type Radius struct {
	o       RadiusOptions
	servers *servers
	log     *slog.Logger
}

// maxPassword is the longest User-Password RFC 2865 allows.
const maxPassword = 128

// NewRadius checks o and returns the backend.
func NewRadius(o RadiusOptions) (*Radius, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("firstfactor: radius: no servers")
	}
	for _, s := range o.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("firstfactor: radius: server %q: %w", s, err)
		}
	}
	if len(o.Secret) == 0 {
		return nil, errors.New("firstfactor: radius: no secret")
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.NASIdentifier == "" {
		o.NASIdentifier = "radotp"
	}
	return &Radius{o: o, servers: newServers(len(o.Servers)), log: orDefault(o.Logger)}, nil
}

// OneCheckPerRequest is true: the upstream server may count failures against its own lockout, so a request gets one bind, never two
// (verifier.OneCheckPerRequest).
func (r *Radius) OneCheckPerRequest() bool { return true }

// Check sends User-Name and password upstream; u is not used.
func (r *Radius) Check(ctx context.Context, name string, _ *store.User, password []byte) (verifier.FirstFactorResult, error) {
	if name == "" || len(name) > 253 || len(password) == 0 || len(password) > maxPassword {
		return rejected, nil // cannot be sent (RFC 2865 5.1, 5.2)
	}
	var errs []error
	for _, i := range r.servers.order() {
		res, err := r.exchange(ctx, r.o.Servers[i], name, password)
		if err == nil {
			r.servers.answered(i)
			return res, nil
		}
		if ctx.Err() != nil {
			return rejected, ctxErr(ctx, "radius")
		}
		r.servers.failed(i)
		r.log.Warn("firstfactor: radius: no answer from upstream server", "server", r.o.Servers[i], "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", r.o.Servers[i], err))
	}
	return rejected, unavailable("radius", errors.Join(errs...))
}

// Close does nothing; it is there so that every backend can be closed.
func (r *Radius) Close() error { return nil }

var errNoAnswer = errors.New("no valid reply")

// exchange sends one request to server, resending it r.o.Retries times, and
// returns the verdict of the first authentic reply.
func (r *Radius) exchange(ctx context.Context, server, name string, password []byte) (verifier.FirstFactorResult, error) {
	req, err := r.request(name, password)
	if err != nil {
		return rejected, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return rejected, err
	}
	defer c.Close()
	// The context ending wakes a Read in progress.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, radius.MaxPacketLength+1)
	for try := 0; try <= r.o.Retries; try++ {
		if _, err := c.Write(req); err != nil {
			return rejected, err
		}
		c.SetReadDeadline(time.Now().Add(r.o.Timeout))
		if ctx.Err() != nil { // ended before the deadline was set
			return rejected, ctx.Err()
		}
		for {
			n, err := c.Read(buf)
			if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
				break // resend
			}
			if err != nil {
				return rejected, err // connection refused (port unreachable), context
			}
			res, why := r.reply(req, buf[:n])
			if why == "" {
				return res, nil
			}
			r.log.Debug("firstfactor: radius: reply ignored", "server", server, "why", why)
		}
	}
	return rejected, fmt.Errorf("%w after %d tries of %s", errNoAnswer, r.o.Retries+1, r.o.Timeout)
}

// request encodes an Access-Request with a random ID and authenticator and
// a Message-Authenticator as its first attribute.
func (r *Radius) request(name string, password []byte) ([]byte, error) {
	p := radius.New(radius.CodeAccessRequest, r.o.Secret)
	var id [1]byte
	rand.Read(id[:])
	p.Identifier = id[0]
	rand.Read(p.Authenticator[:])
	p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, md5.Size))
	if err := rfc2865.UserName_SetString(p, name); err != nil {
		return nil, err
	}
	if err := rfc2865.UserPassword_Set(p, password); err != nil {
		return nil, err
	}
	if err := rfc2865.NASIdentifier_SetString(p, r.o.NASIdentifier); err != nil {
		return nil, err
	}
	b, err := p.Encode()
	if err != nil {
		return nil, err
	}
	if b[20] != byte(rfc2869.MessageAuthenticator_Type) || b[21] != 2+md5.Size {
		return nil, errors.New("Message-Authenticator not first") // cannot happen
	}
	mac := hmac.New(md5.New, r.o.Secret)
	mac.Write(b) // with the attribute's value all zero (RFC 3579 3.2)
	mac.Sum(b[22:22:38])
	return b, nil
}

// reply checks b as the reply to req and returns the verdict, or why it is
// not an authentic reply ("" if it is).
func (r *Radius) reply(req, b []byte) (verifier.FirstFactorResult, string) {
	if len(b) < 20 {
		return rejected, "shorter than 20 bytes"
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 20 || n > len(b) || n > radius.MaxPacketLength {
		return rejected, "bad length"
	}
	b = b[:n]
	if b[1] != req[1] {
		return rejected, "other identifier"
	}
	code := radius.Code(b[0])
	if code != radius.CodeAccessAccept && code != radius.CodeAccessReject && code != radius.CodeAccessChallenge {
		return rejected, "not a reply to an Access-Request"
	}
	h := md5.New()
	h.Write(b[:4])
	h.Write(req[4:20])
	h.Write(b[20:])
	h.Write(r.o.Secret)
	if subtle.ConstantTimeCompare(h.Sum(nil), b[4:20]) != 1 {
		return rejected, "bad Response Authenticator (wrong secret?)"
	}
	ma := -1 // offset of the Message-Authenticator value
	for i := 20; i < n; {
		if i+2 > n || b[i+1] < 2 || i+int(b[i+1]) > n {
			return rejected, "malformed attributes"
		}
		if b[i] == byte(rfc2869.MessageAuthenticator_Type) {
			if ma >= 0 || b[i+1] != 2+md5.Size {
				return rejected, "malformed Message-Authenticator"
			}
			ma = i + 2
		}
		i += int(b[i+1])
	}
	if ma < 0 {
		if !r.o.AllowMissingMessageAuthenticator {
			return rejected, "no Message-Authenticator"
		}
	} else {
		c := append([]byte(nil), b...)
		copy(c[4:20], req[4:20])
		clear(c[ma : ma+md5.Size])
		mac := hmac.New(md5.New, r.o.Secret)
		mac.Write(c)
		if !hmac.Equal(mac.Sum(nil), b[ma:ma+md5.Size]) {
			return rejected, "bad Message-Authenticator"
		}
	}
	switch code {
	case radius.CodeAccessAccept:
		return passed, ""
	case radius.CodeAccessChallenge:
		r.log.Warn("firstfactor: radius: upstream answered Access-Challenge, which radotp cannot relay; rejected")
	}
	return rejected, ""
}
