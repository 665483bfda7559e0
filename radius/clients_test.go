package radius

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/radotp/radotp/verifier"
)

func client(name string, prefixes ...string) Client {
	c := Client{Client: verifier.Client{Name: name}, Secret: []byte("secret-" + name)}
	for _, p := range prefixes {
		c.Prefixes = append(c.Prefixes, netip.MustParsePrefix(p))
	}
	return c
}

func TestClientsLookup(t *testing.T) {
	cs, err := NewClients([]Client{
		client("net8", "10.0.0.0/8"),
		client("net16", "10.1.0.0/16"),
		client("host", "10.1.2.3/32"),
		client("v6", "2001:db8::/32"),
		client("v6host", "2001:db8::1/128", "192.168.0.0/24"),
		client("mapped", "::ffff:172.16.0.0/108"),
		client("unmasked", "10.200.1.2/16"), // means 10.200.0.0/16
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want string // "" = no client
	}{
		{"10.9.9.9", "net8"},
		{"10.1.9.9", "net16"},
		{"10.1.2.3", "host"},
		{"10.1.2.4", "net16"},
		{"::ffff:10.1.2.3", "host"},
		{"::ffff:10.1.9.9", "net16"},
		{"11.0.0.1", ""},
		{"2001:db8::1", "v6host"},
		{"2001:db8::2", "v6"},
		{"fe80::1%eth0", ""},
		{"2001:db9::1", ""},
		{"192.168.0.77", "v6host"},
		{"172.16.5.5", "mapped"},
		{"10.200.77.1", "unmasked"},
		{"0.0.0.0", ""},
		{"::", ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			c, ok := cs.Lookup(netip.MustParseAddr(tc.addr))
			got := ""
			if ok {
				got = c.Name
			}
			if got != tc.want {
				t.Fatalf("Lookup(%s) = %q; want %q", tc.addr, got, tc.want)
			}
		})
	}
	t.Run("Zone", func(t *testing.T) {
		cs, err := NewClients([]Client{client("ll", "fe80::/10")})
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := cs.Lookup(netip.MustParseAddr("fe80::1%eth0")); !ok || c.Name != "ll" {
			t.Fatalf("zoned address not matched")
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		if _, ok := cs.Lookup(netip.Addr{}); ok {
			t.Fatal("the zero Addr matched")
		}
		var nilClients *Clients
		if _, ok := nilClients.Lookup(netip.MustParseAddr("10.0.0.1")); ok {
			t.Fatal("nil Clients matched")
		}
	})
	t.Run("CatchAll", func(t *testing.T) {
		cs, err := NewClients([]Client{client("all", "0.0.0.0/0"), client("one", "10.0.0.1/32")})
		if err != nil {
			t.Fatal(err)
		}
		for addr, want := range map[string]string{"10.0.0.1": "one", "8.8.8.8": "all"} {
			if c, ok := cs.Lookup(netip.MustParseAddr(addr)); !ok || c.Name != want {
				t.Errorf("Lookup(%s) = %v; want %s", addr, c, want)
			}
		}
	})
}

func TestNewClientsCopies(t *testing.T) {
	in := []Client{client("a", "10.0.0.0/8")}
	cs, err := NewClients(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0].Secret[0] = 'X'
	in[0].Prefixes[0] = netip.MustParsePrefix("11.0.0.0/8")
	c, ok := cs.Lookup(netip.MustParseAddr("10.0.0.1"))
	if !ok || string(c.Secret) != "secret-a" || c.Prefixes[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Fatalf("Clients shares memory with its input: %v %q", c, c.Secret)
	}
}

func TestNewClientsErrors(t *testing.T) {
	noSecret := client("nosecret", "10.0.0.0/8")
	noSecret.Secret = nil
	for _, tc := range []struct {
		name    string
		clients []Client
		want    []string // substrings of the error
	}{
		{"EmptySecret", []Client{noSecret}, []string{`"nosecret"`, "empty secret"}},
		{"NoPrefix", []Client{client("none")}, []string{`"none"`, "no address prefix"}},
		{"InvalidPrefix", []Client{{Client: verifier.Client{Name: "bad"}, Secret: []byte("s"), Prefixes: []netip.Prefix{{}}}}, []string{`"bad"`, "invalid prefix"}},
		{"MappedTooShort", []Client{client("m", "::ffff:0.0.0.0/90")}, []string{`"m"`}},
		{"SamePrefixTwoClients", []Client{client("first", "10.0.0.0/8"), client("second", "10.0.0.0/8")}, []string{`"first"`, `"second"`, "10.0.0.0/8"}},
		{"SamePrefixOnceMasked", []Client{client("first", "10.0.0.0/8"), client("second", "10.1.1.1/8")}, []string{`"first"`, `"second"`}},
		{"SamePrefixMapped", []Client{client("first", "10.0.0.0/8"), client("second", "::ffff:10.0.0.0/104")}, []string{`"first"`, `"second"`}},
		{"SamePrefixIPv6", []Client{client("first", "2001:db8::/32"), client("second", "2001:db8::/32")}, []string{`"first"`, `"second"`}},
		{"SamePrefixOneClient", []Client{client("twice", "10.0.0.0/8", "10.0.0.0/8")}, []string{`"twice"`, "twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClients(tc.clients)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "radius: ") {
				t.Errorf("error %q does not start with radius: ", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %s", msg, w)
				}
			}
		})
	}
}

func TestClientStringHidesSecret(t *testing.T) {
	c := client("vpn", "10.0.0.0/8")
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(s, "secret-vpn") || !strings.Contains(s, "vpn") {
			t.Errorf("printed client %q", s)
		}
	}
}
