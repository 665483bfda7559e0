package radius

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	"github.com/radotp/radotp/verifier"
)

// Client is a NAS allowed to send requests: the addresses it sends from and
// the secret it shares with the server.
type Client struct {
	verifier.Client // Name, Mode, Separator, Policy: passed to the Verifier in every Attempt

	// Prefixes are the source addresses the client sends from. A source
	// matching prefixes of several clients belongs to the longest prefix.
	Prefixes []netip.Prefix
	// Secret is the RADIUS shared secret. It must not be empty.
	Secret []byte
	// RequireMessageAuthenticator drops Access-Requests without a
	// Message-Authenticator attribute. Status-Server always requires one.
	RequireMessageAuthenticator bool

	mac *macKey // Secret, ready for HMAC-MD5 (set by NewClients)
}

// macKey returns the client's secret ready for Message-Authenticator.
func (c *Client) macKey() *macKey {
	// The key keeps its own copy of the secret, so that this also catches
	// a Secret changed in place (the server's own bytes on both sides: no
	// timing to hide).
	if c.mac == nil || !bytes.Equal(c.mac.secret, c.Secret) {
		return newMACKey(c.Secret) // not from NewClients, or its Secret was changed
	}
	return c.mac
}

// String describes the client without its secret, so that a Client printed
// by mistake does not leak it.
func (c Client) String() string {
	return fmt.Sprintf("radius.Client{Name:%q Mode:%q Prefixes:%v RequireMessageAuthenticator:%t}",
		c.Name, c.Mode, c.Prefixes, c.RequireMessageAuthenticator)
}

// Clients is a set of clients indexed by address prefix. It is immutable
// after NewClients and safe for concurrent use; the zero value and nil hold no
// clients.
type Clients struct {
	v4, v6 prefixTable
}

// prefixTable maps masked prefixes of one address family to clients.
type prefixTable struct {
	bits []int // the prefix lengths present, longest first
	m    map[netip.Prefix]*Client
}

// NewClients indexes copies of cs. It returns an error if a client has an
// empty secret, no prefix or an invalid prefix, or if two prefixes (of the
// same client or of two clients) are the same once masked. An IPv4-mapped
// IPv6 prefix (::ffff:10.0.0.0/104) counts as the IPv4 prefix it maps.
func NewClients(cs []Client) (*Clients, error) {
	c := &Clients{}
	owner := make(map[netip.Prefix]*Client)
	for i := range cs {
		cl := cs[i]
		if len(cl.Secret) == 0 {
			return nil, fmt.Errorf("radius: client %q: empty secret", cl.Name)
		}
		if len(cl.Prefixes) == 0 {
			return nil, fmt.Errorf("radius: client %q: no address prefix", cl.Name)
		}
		cl.Secret = slices.Clone(cl.Secret)
		cl.mac = newMACKey(cl.Secret)
		cl.Prefixes = slices.Clone(cl.Prefixes)
		for j, p := range cl.Prefixes {
			np, err := normalizePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("radius: client %q: prefix %d: %w", cl.Name, j+1, err)
			}
			if prev, dup := owner[np]; dup {
				if prev == &cl {
					return nil, fmt.Errorf("radius: client %q: prefix %s given twice", cl.Name, np)
				}
				return nil, fmt.Errorf("radius: clients %q and %q both have prefix %s", prev.Name, cl.Name, np)
			}
			owner[np] = &cl
			cl.Prefixes[j] = np
		}
	}
	for p, cl := range owner {
		t := &c.v6
		if p.Addr().Is4() {
			t = &c.v4
		}
		if t.m == nil {
			t.m = make(map[netip.Prefix]*Client)
		}
		t.m[p] = cl
		if !slices.Contains(t.bits, p.Bits()) {
			t.bits = append(t.bits, p.Bits())
		}
	}
	slices.SortFunc(c.v4.bits, func(a, b int) int { return b - a })
	slices.SortFunc(c.v6.bits, func(a, b int) int { return b - a })
	return c, nil
}

// normalizePrefix returns p masked, with an IPv4-mapped IPv6 prefix turned
// into the IPv4 prefix it covers.
func normalizePrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", p.String())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %s covers more than the IPv4-mapped range", p)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Lookup returns the client whose prefix is the longest one containing a.
// An IPv4-mapped IPv6 address is looked up as the IPv4 address it maps, and
// an IPv6 zone is ignored.
func (c *Clients) Lookup(a netip.Addr) (*Client, bool) {
	if c == nil || !a.IsValid() {
		return nil, false
	}
	a = a.Unmap().WithZone("")
	t := &c.v6
	if a.Is4() {
		t = &c.v4
	}
	for _, bits := range t.bits {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if cl, ok := t.m[p]; ok {
			return cl, true
		}
	}
	return nil, false
}
