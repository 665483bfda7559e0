package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// testSecret is the secret of the clients in these tests; no message may
// ever contain it.
const testSecret = "Zq8-test-secret-NEVER-SHOWN"

// client returns a [[client]] table with a valid name, address and secret,
// changed by key/value pairs of TOML source; a value "" leaves the key out.
func client(kv ...string) string {
	keys := []string{"name", "address", "secret"}
	vals := map[string]string{"name": `"vpn"`, "address": `"192.0.2.1"`, "secret": `"` + testSecret + `"`}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	b.WriteString("[[client]]\n")
	for _, k := range keys {
		if vals[k] != "" {
			b.WriteString(k + " = " + vals[k] + "\n")
		}
	}
	return b.String()
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), "radotp.toml", t.TempDir())
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", src, err)
	}
	return c
}

// parseErr parses src, which must fail, and checks the error never shows
// the client secret.
func parseErr(t *testing.T, src string) string {
	t.Helper()
	c, err := Parse([]byte(src), "radotp.toml", t.TempDir())
	if err == nil {
		t.Fatalf("Parse:\n%s\nsucceeded, want an error (config %+v)", src, c)
	}
	if c != nil {
		t.Errorf("Parse returned a config with its error")
	}
	msg := err.Error()
	if strings.Contains(msg, testSecret) || strings.Contains(msg, "987654321987") {
		t.Fatalf("error message contains the secret:\n%s", msg)
	}
	return msg
}

func wantAll(t *testing.T, msg string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("error\n%s\ndoes not contain %q", msg, s)
		}
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"EmptyFile", ""},
		{"OnlyComments", "# nothing\n\n"},
		{"EmptySections", "[radius]\n[database]\n[totp]\n[lockout]\n[policy]\n[metrics]\n[log]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src), "radotp.toml", "")
			if err != nil {
				t.Fatal(err)
			}
			if want := Default(); !reflect.DeepEqual(c, want) {
				t.Errorf("got %+v\nwant %+v", c, want)
			}
		})
	}

	t.Run("Values", func(t *testing.T) {
		c := Default()
		checks := []struct {
			name      string
			got, want any
		}{
			{"radius.listen", c.Radius.Listen, "127.0.0.1:1812"},
			{"radius.workers", c.Radius.Workers, 128},
			{"radius.queue_size", c.Radius.QueueSize, 256},
			{"radius.reply_cache_ttl", c.Radius.ReplyCacheTTL.Duration, 30 * time.Second},
			{"radius.reply_cache_size", c.Radius.ReplyCacheSize, 1 << 20},
			{"radius.receive_buffer", c.Radius.ReceiveBuffer, 0},
			{"database.path", c.Database.Path, "radotp.db"},
			{"database.key_file", c.Database.KeyFile, "radotp.key"},
			{"totp.issuer", c.TOTP.Issuer, "radotp"},
			{"totp.algorithm", c.TOTP.Algorithm, "SHA1"},
			{"totp.digits", c.TOTP.Digits, 6},
			{"totp.period", c.TOTP.Period.Duration, 30 * time.Second},
			{"totp.skew", c.TOTP.Skew, 1},
			{"totp.activation_delay", c.TOTP.ActivationDelay.Duration, 15 * time.Minute},
			{"lockout.max_failures", c.Lockout.MaxFailures, 10},
			{"lockout.duration", c.Lockout.Duration.Duration, 15 * time.Minute},
			{"policy.default", c.Policy.Default, "required"},
			{"metrics.listen", c.Metrics.Listen, "127.0.0.1:9812"},
			{"log.level", c.Log.Level, "info"},
			{"log.format", c.Log.Format, "text"},
			{"clients", len(c.Clients), 0},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
			}
		}
	})

	t.Run("DefaultIsValid", func(t *testing.T) {
		p := &problems{}
		Default().validate(p)
		if err := p.err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ClientDefaults", func(t *testing.T) {
		c := mustParse(t, client())
		cl := c.Clients[0]
		if cl.Mode != ModeAppend || cl.Separator != "" || cl.Policy != "" {
			t.Errorf("mode %q separator %q policy %q; want append, \"\", \"\"", cl.Mode, cl.Separator, cl.Policy)
		}
		if cl.RequireMessageAuthenticator == nil || !*cl.RequireMessageAuthenticator || !cl.RequiresMessageAuthenticator() || !c.RequireMessageAuthenticator(0) {
			t.Errorf("require_message_authenticator not defaulted to true: %v", cl.RequireMessageAuthenticator)
		}
		if string(cl.SecretBytes) != testSecret {
			t.Errorf("SecretBytes not filled from secret")
		}
	})

	t.Run("RequiresMessageAuthenticatorNil", func(t *testing.T) {
		if !(Client{}).RequiresMessageAuthenticator() {
			t.Error("nil RequireMessageAuthenticator must mean true")
		}
		off := false
		if (Client{RequireMessageAuthenticator: &off}).RequiresMessageAuthenticator() {
			t.Error("false must mean false")
		}
	})
}

func TestValues(t *testing.T) {
	src := `
[radius]
listen = "[::1]:11812"
workers = 8
queue_size = 16
reply_cache_ttl = "1m30s"
reply_cache_size = 2048
receive_buffer = 1048576
[database]
path = "/var/lib/radotp/radotp.db"
key_file = "keys/radotp.key"
[totp]
issuer = "Example Corp"
algorithm = "sha256"
digits = 8
period = "60s"
skew = 0
activation_delay = "0s"
[lockout]
max_failures = 3
duration = "2h"
[policy]
default = "optional"
[metrics]
listen = ""
[log]
level = "debug"
format = "json"
` + client("mode", `"otp"`, "require_message_authenticator", "false", "policy", `"disabled"`) +
		client("name", `"ssh.gw-1"`, "address", `"2001:db8::/48"`, "separator", `", "`)
	dir := t.TempDir()
	c, err := Parse([]byte(src), "radotp.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"radius.listen", c.Radius.Listen, "[::1]:11812"},
		{"radius.workers", c.Radius.Workers, 8},
		{"radius.queue_size", c.Radius.QueueSize, 16},
		{"radius.reply_cache_ttl", c.Radius.ReplyCacheTTL.Duration, 90 * time.Second},
		{"radius.reply_cache_size", c.Radius.ReplyCacheSize, 2048},
		{"radius.receive_buffer", c.Radius.ReceiveBuffer, 1048576},
		{"database.path (absolute, kept)", c.Database.Path, "/var/lib/radotp/radotp.db"},
		{"database.key_file (relative, resolved)", c.Database.KeyFile, filepath.Join(dir, "keys", "radotp.key")},
		{"totp.issuer", c.TOTP.Issuer, "Example Corp"},
		{"totp.algorithm (upper-cased)", c.TOTP.Algorithm, "SHA256"},
		{"totp.digits", c.TOTP.Digits, 8},
		{"totp.period", c.TOTP.Period.Duration, time.Minute},
		{"totp.skew", c.TOTP.Skew, 0},
		{"totp.activation_delay", c.TOTP.ActivationDelay.Duration, time.Duration(0)},
		{"lockout.max_failures", c.Lockout.MaxFailures, 3},
		{"lockout.duration", c.Lockout.Duration.Duration, 2 * time.Hour},
		{"policy.default", c.Policy.Default, "optional"},
		{"metrics.listen (off)", c.Metrics.Listen, ""},
		{"log.level", c.Log.Level, "debug"},
		{"log.format", c.Log.Format, "json"},
		{"client 0 mode", c.Clients[0].Mode, "otp"},
		{"client 0 require_message_authenticator", c.Clients[0].RequiresMessageAuthenticator(), false},
		{"client 0 policy", c.Clients[0].Policy, "disabled"},
		{"client 0 prefix", c.Clients[0].Prefix, netip.MustParsePrefix("192.0.2.1/32")},
		{"client 1 name", c.Clients[1].Name, "ssh.gw-1"},
		{"client 1 prefix", c.Clients[1].Prefix, netip.MustParsePrefix("2001:db8::/48")},
		{"client 1 separator", c.Clients[1].Separator, ", "},
		{"client 1 mode", c.Clients[1].Mode, "append"},
		{"path", c.Path, ""},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"15m", 15 * time.Minute},
		{"24h", 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"0s", 0},
		{"0", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			if err := d.UnmarshalText([]byte(tc.in)); err != nil {
				t.Fatal(err)
			}
			if d.Duration != tc.want {
				t.Errorf("got %v, want %v", d.Duration, tc.want)
			}
			text, err := d.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			var back Duration
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("round trip via %q: %v, %v", text, back, err)
			}
		})
	}
	for _, in := range []string{"", "30", "7d", "thirty seconds", "1.5.5s"} {
		t.Run("Bad/"+in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(in))
			if err == nil {
				t.Fatalf("UnmarshalText(%q) = %v, want an error", in, d)
			}
			wantAll(t, err.Error(), `"`+in+`"`, "30s")
		})
	}
	t.Run("TOMLEncoding", func(t *testing.T) {
		var b strings.Builder
		if err := toml.NewEncoder(&b).Encode(struct{ P Duration }{Duration{90 * time.Second}}); err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != "P = \"1m30s\"\n" {
			t.Errorf("encoded %q", got)
		}
	})
}

func TestStrictDecode(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"TopLevel", "colour = \"blue\"\n", []string{`config: radotp.toml: unknown key "colour"`}},
		{"UnknownSection", "[webui]\nlisten = \"x\"\n", []string{`unknown key "webui"`}},
		{"MisspeltSection", "[enrolment]\nlisten = \"x\"\n", []string{`unknown key "enrolment" (did you mean "enrollment"?)`}},
		{"InSection", "[radius]\nlistn = \"127.0.0.1:1\"\n", []string{`config: radotp.toml: unknown key "radius.listn" (did you mean "radius.listen"?)`}},
		{"InClient", client("nmae", `"x"`), []string{`config: radotp.toml: client "vpn": unknown key "client.nmae" (did you mean "client.name"?)`}},
		{"InSecondClient", client() + client("name", `"b"`, "address", `"192.0.2.2"`, "colour", "1"), []string{`client "b": unknown key "client.colour"`}},
		{"InInlineClient", "client = [{name = \"vpn\", address = \"192.0.2.1\", secret = \"" + testSecret + "\", extra = 1}]\n", []string{`client "vpn": unknown key "client.extra"`}},
		{"DottedKey", "radius.listen.port = 1\n", []string{`radius.listen = {...}: must be a string`}},
		{"WrongCase", "[radius]\nListen = \"127.0.0.1:1\"\n", []string{`unknown key "radius.Listen" (did you mean "radius.listen"?)`}},
		{"WrongCaseSection", "[Radius]\n", []string{`unknown key "Radius" (did you mean "radius"?)`}},
		{"NestedUnderValue", "[totp.period]\nx = 1\n", []string{`totp.period = {...}: must be a duration string`}},
		{"StringForInt", "[totp]\ndigits = \"6\"\n", []string{`config: radotp.toml: totp.digits = "6": must be an integer`}},
		{"FloatForInt", "[radius]\nworkers = 6.5\n", []string{`radius.workers = 6.5: must be an integer`}},
		{"IntForString", "[totp]\nissuer = 5\n", []string{`totp.issuer = 5: must be a string`}},
		{"IntForDuration", "[totp]\nperiod = 30\n", []string{`totp.period = 30: must be a duration string`, `"30s"`}},
		{"BadDuration", "[lockout]\nduration = \"15 minutes\"\n", []string{`lockout.duration = "15 minutes": not a duration`, `"15m"`}},
		{"DateForDuration", "[totp]\nactivation_delay = 00:15:00\n", []string{`totp.activation_delay = (a date/time): must be a duration string`}},
		{"StringForBool", client("require_message_authenticator", `"yes"`), []string{`client "vpn": require_message_authenticator = "yes": must be true or false`}},
		{"ValueForSection", "radius = \"127.0.0.1:1812\"\n", []string{`radius = "127.0.0.1:1812": must be a table ([radius])`}},
		{"TableForClient", "[client]\nname = \"vpn\"\n", []string{`client = {...}: must be an array of tables ([[client]])`}},
		{"ArrayOfValuesForClient", "client = [1, 2]\n", []string{`client = [...]: must be an array of tables ([[client]])`}},
		{"SecretWrongType", client("secret", "987654321987"), []string{`client "vpn": secret: must be a string`}},
		{"Overflow", "[radius]\nworkers = 9223372036854775807\n", []string{`radius.workers = 9223372036854775807: must be from 1 to 4096`}},
		{"SeveralAtOnce", "a = 1\n[radius]\nb = 2\nworkers = \"x\"\n" + client("c", "3"), []string{
			`unknown key "a"`, `unknown key "radius.b"`, `radius.workers = "x": must be an integer`, `unknown key "client.c"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAll(t, parseErr(t, tc.src), tc.want...)
		})
	}
}

func TestSyntaxError(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"UnclosedSection", "[radius]\nworkers = 4\n[totp\n", []string{"config: radotp.toml: line 3, column 6: expected '.' or ']'"}},
		{"MissingValue", "[radius]\n\nworkers =\n", []string{"config: radotp.toml: line 3, column 10: expected value"}},
		{"DuplicateKey", "[radius]\nworkers = 4\nworkers = 5\n", []string{"line 3, column 1: ", "'radius.workers' has already been defined"}},
		{"UnquotedString", "[totp]\nissuer = radotp\n", []string{"line 2, column 10: "}},
		{"AfterBOM", "\ufeff[totp]\nissuer = radotp\n", []string{"line 2, column 10: "}},
		// Column 13 counts characters; counting bytes would give 14.
		{"AfterMultibyte", "[totp]\nissuer = \"é\" x\n", []string{"line 2, column 13: "}},
		{"CRLF", "a=1\r\nb=\r\n", []string{"line 2, column 3: "}},
		{"UnclosedString", "[log]\nlevel = \"info", []string{"line 2, column "}},
		{"NewlineInMessage", "[radius]\nworkers = 0b\n", []string{`line 2, column 11: not a binary number: '0b\n'`}},
		{"ShowsWhatItFound", "[log]\nlevel = debug\n", []string{`line 2, column 9: expected value but found "debug" instead`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "radotp.toml", "")
			if err == nil {
				t.Fatal("no error")
			}
			wantAll(t, err.Error(), tc.want...)
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("syntax error is more than one line: %q", err)
			}
		})
	}
}

func TestSyntaxErrorHidesSecret(t *testing.T) {
	const s = "987654321987"
	for _, tc := range []struct{ name, src string }{
		{"Unquoted", client("secret", s+"abc")},
		{"UnquotedWord", client("secret", "x"+s)},
		{"BadDate", client("secret", "2024-01-0"+s)},
		{"BadEscape", client("secret", `"\uzz`+s+`"`)},
		{"InlineTable", "client = [{name = \"vpn\", secret = x" + s + "}]\n"},
		{"TopLevel", "secret = x" + s + "\n"},
		{"InSection", "[radius]\nsecret = x" + s + "\n"},
		{"NextLine", client("secret", `"`+s+`"`) + "mode = \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := parseErr(t, tc.src)
			for i := 0; i+4 <= len(s); i++ {
				if strings.Contains(msg, s[i:i+4]) {
					t.Fatalf("error shows part of the secret (%q):\n%s", s[i:i+4], msg)
				}
			}
			wantAll(t, msg, "config: radotp.toml: line ")
		})
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // key, value and what is allowed
	}{
		{"ListenNoPort", "[radius]\nlisten = \"127.0.0.1\"\n", []string{`radius.listen = "127.0.0.1": must be host:port`}},
		{"ListenEmpty", "[radius]\nlisten = \"\"\n", []string{`radius.listen = "": must be host:port`}},
		{"ListenBadPort", "[radius]\nlisten = \"127.0.0.1:70000\"\n", []string{`radius.listen = "127.0.0.1:70000": port must be a number from 0 to 65535`}},
		{"ListenNamedPort", "[radius]\nlisten = \"127.0.0.1:radius\"\n", []string{`radius.listen = "127.0.0.1:radius": port must be a number`}},
		{"ListenBadHost", "[radius]\nlisten = \"exa mple:1812\"\n", []string{`radius.listen = "exa mple:1812": host must be an IP address or a host name`}},
		{"ListenUnbracketedV6", "[radius]\nlisten = \"::1:1812\"\n", []string{`radius.listen = "::1:1812": must be host:port`}},
		{"WorkersZero", "[radius]\nworkers = 0\n", []string{`radius.workers = 0: must be from 1 to 4096`}},
		{"WorkersHigh", "[radius]\nworkers = 4097\n", []string{`radius.workers = 4097: must be from 1 to 4096`}},
		{"QueueSize", "[radius]\nqueue_size = -1\n", []string{`radius.queue_size = -1: must be from 1 to 1048576`}},
		{"ReplyCacheTTLLow", "[radius]\nreply_cache_ttl = \"1s\"\n", []string{`radius.reply_cache_ttl = "1s": must be from 5s to 5m`}},
		{"ReplyCacheTTLHigh", "[radius]\nreply_cache_ttl = \"1h\"\n", []string{`radius.reply_cache_ttl = "1h": must be from 5s to 5m`}},
		{"ReplyCacheSize", "[radius]\nreply_cache_size = 100\n", []string{`radius.reply_cache_size = 100: must be from 1024 to 16777216`}},
		{"ReceiveBufferLow", "[radius]\nreceive_buffer = 65535\n", []string{`radius.receive_buffer = 65535: must be 0 (the system's default) or from 65536 to 67108864 bytes`}},
		{"ReceiveBufferHigh", "[radius]\nreceive_buffer = 67108865\n", []string{`radius.receive_buffer = 67108865: must be 0 (the system's default) or from 65536 to 67108864 bytes`}},
		{"ReceiveBufferNegative", "[radius]\nreceive_buffer = -1\n", []string{`radius.receive_buffer = -1: must be 0`}},
		{"DatabasePathEmpty", "[database]\npath = \"\"\n", []string{`database.path = "": must not be empty`}},
		{"KeyFileEmpty", "[database]\nkey_file = \"\"\n", []string{`database.key_file = "": must not be empty`}},
		{"KeyFileIsDatabase", "[database]\npath = \"/x/db\"\nkey_file = \"/x/./db\"\n", []string{`database.key_file = "/x/./db": must not be the database file`}},
		{"IssuerEmpty", "[totp]\nissuer = \"\"\n", []string{`totp.issuer = "": must not be empty`}},
		{"IssuerColon", "[totp]\nissuer = \"ACME:VPN\"\n", []string{`totp.issuer = "ACME:VPN": must not contain ':'`}},
		{"IssuerControl", "[totp]\nissuer = \"a\\nb\"\n", []string{`totp.issuer = "a\nb": must be printable text`}},
		{"Algorithm", "[totp]\nalgorithm = \"MD5\"\n", []string{`totp.algorithm = "MD5": must be one of SHA1, SHA256, SHA512`}},
		{"Digits", "[totp]\ndigits = 7\n", []string{`config: radotp.toml: totp.digits = 7: must be 6 or 8`}},
		{"PeriodFraction", "[totp]\nperiod = \"30.5s\"\n", []string{`totp.period = "30.5s": must be whole seconds`}},
		{"PeriodLow", "[totp]\nperiod = \"10s\"\n", []string{`totp.period = "10s": must be from 15s to 5m`}},
		{"PeriodHigh", "[totp]\nperiod = \"301s\"\n", []string{`totp.period = "5m1s": must be from 15s to 5m`}},
		{"Skew", "[totp]\nskew = 6\n", []string{`totp.skew = 6: must be from 0 to 5`}},
		{"SkewNegative", "[totp]\nskew = -1\n", []string{`totp.skew = -1: must be from 0 to 5`}},
		{"ActivationNegative", "[totp]\nactivation_delay = \"-1m\"\n", []string{`totp.activation_delay = "-1m": must be from 0s to 168h`}},
		{"ActivationHigh", "[totp]\nactivation_delay = \"169h\"\n", []string{`totp.activation_delay = "169h": must be from 0s to 168h`}},
		{"MaxFailures", "[lockout]\nmax_failures = 0\n", []string{`lockout.max_failures = 0: must be from 1 to 1000`}},
		{"LockoutDurationZero", "[lockout]\nduration = \"0s\"\n", []string{`lockout.duration = "0s": must be from 1s to 720h`}},
		{"LockoutDurationHigh", "[lockout]\nduration = \"721h\"\n", []string{`lockout.duration = "721h": must be from 1s to 720h`}},
		{"Policy", "[policy]\ndefault = \"always\"\n", []string{`policy.default = "always": must be one of required, optional, disabled`}},
		{"TrustedNetworkBad", "[policy]\ntrusted_networks = [\"10.0.0.0/8\", \"office\"]\n", []string{`policy.trusted_networks = "office": must be an IP address or a CIDR network`}},
		{"TrustedNetworksNotArray", "[policy]\ntrusted_networks = \"10.0.0.0/8\"\n", []string{`policy.trusted_networks = "10.0.0.0/8": must be an array of strings`}},
		{"TrustedNetworksNumbers", "[policy]\ntrusted_networks = [10]\n", []string{`policy.trusted_networks = [...]: must be an array of strings`}},
		{"AuditRetentionLow", "[audit]\nretention = \"1m\"\n", []string{`audit.retention = "1m": must be from 1h to 87600h`}},
		{"PolicyCase", "[policy]\ndefault = \"Required\"\n", []string{`policy.default = "Required": must be one of`}},
		{"MetricsListen", "[metrics]\nlisten = \"9812\"\n", []string{`metrics.listen = "9812": must be host:port`}},
		{"LogLevel", "[log]\nlevel = \"verbose\"\n", []string{`log.level = "verbose": must be one of debug, info, warn, error`}},
		{"LogFormat", "[log]\nformat = \"xml\"\n", []string{`log.format = "xml": must be one of text, json`}},
		{"LongValueCut", "[log]\nformat = \"" + strings.Repeat("x", 500) + "\"\n", []string{`log.format = "` + strings.Repeat("x", 64) + `"...: must be one of`}},
		{"EnrollmentListen", "[enrollment]\nlisten = \"8080\"\npublic_url = \"https://a.example\"\n", []string{`enrollment.listen = "8080": must be host:port`}},
		{"EnrollmentNoPublicURL", "[enrollment]\nlisten = \"127.0.0.1:8080\"\n", []string{`enrollment.public_url must be set when enrollment.listen is`}},
		{"EnrollmentPublicURLRelative", "[enrollment]\npublic_url = \"radotp.example.org\"\n", []string{`enrollment.public_url = "radotp.example.org": must be an absolute http:// or https:// URL`}},
		{"EnrollmentPublicURLScheme", "[enrollment]\npublic_url = \"ftp://a.example\"\n", []string{`enrollment.public_url = "ftp://a.example": must be an absolute http://`}},
		{"EnrollmentPublicURLUser", "[enrollment]\npublic_url = \"https://u:p@a.example\"\n", []string{`must not contain a user name or password`}},
		{"EnrollmentPublicURLQuery", "[enrollment]\npublic_url = \"https://a.example/?x=1\"\n", []string{`must not have a query (?) or a fragment (#)`}},
		{"EnrollmentCertWithoutKey", "[enrollment]\ncert_file = \"/etc/radotp/cert.pem\"\n", []string{`enrollment.cert_file and enrollment.key_file: set both (HTTPS) or neither`}},
		{"EnrollmentCertMissing", "[enrollment]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"\n", []string{`enrollment.cert_file = "/nonexistent/c.pem": no such file`, `enrollment.key_file = "/nonexistent/k.pem": no such file`}},
		{"EnrollmentLinkTTL", "[enrollment]\nlink_ttl = \"1m\"\n", []string{`enrollment.link_ttl = "1m": must be from 5m to 720h`}},
		{"EnrollmentMaxAttempts", "[enrollment]\nmax_attempts = 0\n", []string{`enrollment.max_attempts = 0: must be from 1 to 100`}},
		{"EnrollmentSelfServiceType", "[enrollment]\nself_service = \"yes\"\n", []string{`enrollment.self_service = "yes": must be true or false`}},
		{"EnrollmentAPITokenMissing", "[enrollment]\napi_token_file = \"/nonexistent/token\"\n", []string{`enrollment.api_token_file = "/nonexistent/token": no such file or directory`}},
		{"EnrollmentSupportEmpty", "[enrollment]\nsupport_contact = \"\"\n", []string{`enrollment.support_contact must not be empty`}},
		{"EnrollmentSupportControl", "[enrollment]\nsupport_contact = \"a\\nb\"\n", []string{`enrollment.support_contact = "a\nb": must be printable text on one line`}},
		{"EnrollmentTrustedProxy", "[enrollment]\ntrusted_proxies = [\"proxy\"]\n", []string{`enrollment.trusted_proxies = "proxy": must be an IP address or a CIDR network`}},
		{"EnrollmentMailWithoutSMTP", "[enrollment]\npublic_url = \"https://a.example\"\nmail_link_when_not_enrolled = true\n", []string{`enrollment.mail_link_when_not_enrolled = true needs [smtp] host`}},
		{"EnrollmentMailWithoutURL", "[enrollment]\nmail_link_when_not_enrolled = true\n[smtp]\nhost = \"localhost\"\nfrom = \"r@example.org\"\n", []string{`enrollment.public_url must be set for enrollment.mail_link_when_not_enrolled`}},
		{"SMTPPort", "[smtp]\nport = 0\n", []string{`smtp.port = 0: must be from 1 to 65535`}},
		{"SMTPTLS", "[smtp]\ntls = \"ssl\"\n", []string{`smtp.tls = "ssl": must be one of starttls, implicit, none`}},
		{"SMTPTimeout", "[smtp]\ntimeout = \"0s\"\n", []string{`smtp.timeout = "0s": must be from 1s to 5m`}},
		{"SMTPHost", "[smtp]\nhost = \"mail server\"\nfrom = \"r@example.org\"\n", []string{`smtp.host = "mail server": must be a host name or an IP address`}},
		{"SMTPFromMissing", "[smtp]\nhost = \"mail.example.org\"\n", []string{`smtp.from must be set when smtp.host is`}},
		{"SMTPFromBad", "[smtp]\nhost = \"mail.example.org\"\nfrom = \"radotp\"\n", []string{`smtp.from = "radotp": must be an e-mail address`}},
		{"SMTPUserWithoutPassword", "[smtp]\nhost = \"mail.example.org\"\nfrom = \"r@example.org\"\nusername = \"r\"\n", []string{`smtp.password_file must be set when smtp.username is`}},
		{"SMTPPasswordWithoutUser", "[smtp]\nhost = \"mail.example.org\"\nfrom = \"r@example.org\"\npassword_file = \"/x\"\n", []string{`smtp.username must be set when smtp.password_file is`}},

		{"ClientNameMissing", client("name", ""), []string{`client #1: name is required`}},
		{"ClientNameBad", client("name", `"my vpn"`), []string{`client "my vpn": name = "my vpn": must be letters, digits, '.', '_' and '-' only`}},
		{"ClientNameDuplicate", client() + client("address", `"192.0.2.2"`), []string{`client "vpn": name = "vpn": client #1 and client #2 have this name; names must be unique`}},
		{"ClientAddressMissing", client("address", ""), []string{`client "vpn": address is required`}},
		{"ClientAddressBad", client("address", `"192.0.2.300"`), []string{`client "vpn": address = "192.0.2.300": must be an IP address or a CIDR network`}},
		{"ClientAddressHostname", client("address", `"vpn.example.com"`), []string{`address = "vpn.example.com": must be an IP address or a CIDR network`}},
		{"ClientAddressBadBits", client("address", `"192.0.2.0/33"`), []string{`address = "192.0.2.0/33": must be an IP address`}},
		{"ClientAddressZone", client("address", `"fe80::1%eth0"`), []string{`address = "fe80::1%eth0": must not have an IPv6 zone`}},
		{"ClientPrefixDuplicate", client("name", `"a"`, "address", `"192.0.2.0/24"`) + client("name", `"b"`, "address", `"192.0.2.77/24"`),
			[]string{`client "b": address = "192.0.2.77/24": same network 192.0.2.0/24 as client "a"`}},
		{"ClientBareIPDuplicate", client("name", `"a"`, "address", `"192.0.2.1/32"`) + client("name", `"b"`, "address", `"192.0.2.1"`),
			[]string{`client "b": address = "192.0.2.1": same network 192.0.2.1/32 as client "a"`}},
		{"ClientV6Duplicate", client("name", `"a"`, "address", `"2001:db8::1"`) + client("name", `"b"`, "address", `"2001:DB8:0::1/128"`),
			[]string{`client "b": address = "2001:DB8:0::1/128": same network 2001:db8::1/128 as client "a"`}},
		{"ClientMappedDuplicate", client("name", `"a"`, "address", `"192.0.2.1"`) + client("name", `"b"`, "address", `"::ffff:192.0.2.1"`),
			[]string{`client "b": address = "::ffff:192.0.2.1": same network 192.0.2.1/32 as client "a"`}},
		{"ClientSecretMissing", client("secret", ""), []string{`client "vpn": no secret: set secret or secret_file`}},
		{"ClientSecretEmpty", client("secret", `""`), []string{`client "vpn": no secret: set secret or secret_file`}},
		{"ClientSecretAndFile", client("secret_file", `"vpn.secret"`), []string{`client "vpn": both secret and secret_file are set; set only one`}},
		{"ClientMode", client("mode", `"chap"`), []string{`config: radotp.toml: client "vpn": mode = "chap": must be one of append, otp, challenge, auto`}},
		{"ClientSeparatorWithOTP", client("mode", `"otp"`, "separator", `","`), []string{`client "vpn": separator = ",": only allowed with mode = "append" or "auto"`}},
		{"ClientSeparatorWithChallenge", client("mode", `"challenge"`, "separator", `","`), []string{`client "vpn": separator = ",": only allowed with mode = "append" or "auto"`}},
		{"ClientChallengeTTL", client("challenge_ttl", `"1s"`), []string{`client "vpn": challenge_ttl = "1s": must be from 10s to 10m`}},
		{"ClientChallengePromptEmpty", client("challenge_prompt", `""`), []string{`client "vpn": challenge_prompt must not be empty`}},
		{"ClientChallengePromptControl", client("challenge_prompt", `"a\u0007"`), []string{`challenge_prompt = "a\a": must be printable text`}},
		{"ClientSeparatorLong", client("separator", `"---------"`), []string{`separator = "---------": must be at most 8 characters`}},
		{"ClientSeparatorDigit", client("separator", `"#1"`), []string{`separator = "#1": must not contain digits`}},
		{"ClientSeparatorControl", client("separator", `"\t"`), []string{`separator = "\t": must be printable text`}},
		{"ClientPolicy", client("policy", `"sometimes"`), []string{`client "vpn": policy = "sometimes": must be one of required, optional, disabled`}},
		{"ClientSameNameBothReported", client("mode", `"x"`) + client("address", `"192.0.2.2"`, "mode", `"y"`),
			[]string{`mode = "x"`, `mode = "y"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAll(t, parseErr(t, tc.src), tc.want...)
		})
	}
}

func TestValidAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{"192.0.2.1/32", "192.0.2.1/32"},
		{"192.0.2.0/24", "192.0.2.0/24"},
		{"192.0.2.99/24", "192.0.2.0/24"}, // masked (and a warning)
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:DB8::/32", "2001:db8::/32"},
		{"::1", "::1/128"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c := mustParse(t, client("address", `"`+tc.in+`"`))
			if got := c.Clients[0].Prefix; got != netip.MustParsePrefix(tc.want) {
				t.Errorf("Prefix = %v, want %v", got, tc.want)
			}
			if c.Clients[0].Address != tc.in {
				t.Errorf("Address changed to %q", c.Clients[0].Address)
			}
		})
	}
	t.Run("OverlappingIsFine", func(t *testing.T) {
		c := mustParse(t, client("name", `"net"`, "address", `"192.0.2.0/24"`)+client("name", `"host"`, "address", `"192.0.2.1"`))
		if len(c.Clients) != 2 {
			t.Fatalf("%d clients", len(c.Clients))
		}
	})
}

func TestValidListen(t *testing.T) {
	for _, l := range []string{"127.0.0.1:1812", "[::1]:1812", ":1812", "0.0.0.0:0", "localhost:1812", "radius.example.com:1812", "[fe80::1%eth0]:1812"} {
		t.Run(l, func(t *testing.T) {
			c := mustParse(t, "[radius]\nlisten = \""+l+"\"\n[metrics]\nlisten = \""+l+"\"\n")
			if c.Radius.Listen != l || c.Metrics.Listen != l {
				t.Errorf("got %q, %q", c.Radius.Listen, c.Metrics.Listen)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	t.Run("RelativeToBaseDir", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "secrets", "vpn.secret")
		if err := os.WriteFile(file, []byte(testSecret+"\r\n\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Parse([]byte(client("secret", "", "secret_file", `"secrets/vpn.secret"`)), "radotp.toml", dir)
		if err != nil {
			t.Fatal(err)
		}
		cl := c.Clients[0]
		if string(cl.SecretBytes) != testSecret {
			t.Errorf("SecretBytes = %q, want the file without trailing newlines", cl.SecretBytes)
		}
		if cl.SecretFile != file {
			t.Errorf("SecretFile = %q, want %q", cl.SecretFile, file)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("Absolute", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(file, []byte(testSecret), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Parse([]byte(client("secret", "", "secret_file", `"`+file+`"`)), "radotp.toml", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if string(c.Clients[0].SecretBytes) != testSecret {
			t.Errorf("SecretBytes = %q", c.Clients[0].SecretBytes)
		}
	})

	t.Run("WorldReadableWarns", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "s"), []byte(testSecret), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "s"), 0o644); err != nil { // despite the umask
			t.Fatal(err)
		}
		c, err := Parse([]byte(client("secret", "", "secret_file", `"s"`)), "radotp.toml", dir)
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Join(c.Warnings(), "\n")
		wantAll(t, w, `client "vpn": secret_file`, "0644", "chmod 600")
		if strings.Contains(w, testSecret) {
			t.Error("warning contains the secret")
		}
	})

	for _, tc := range []struct {
		name    string
		content *string // nil: no file
		mkdir   bool
		want    []string
	}{
		{name: "Missing", want: []string{`client "vpn": secret_file = "`, `vpn.secret": no such file or directory`}},
		{name: "Empty", content: new(""), want: []string{`client "vpn": secret_file = "`, `vpn.secret": file is empty`}},
		{name: "OnlyNewline", content: new("\n"), want: []string{`vpn.secret": file is empty`}},
		{name: "TooLarge", content: new(strings.Repeat(testSecret, 1000)), want: []string{`vpn.secret": file is larger than 4096 bytes`}},
		{name: "Directory", mkdir: true, want: []string{`vpn.secret": not a regular file`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "vpn.secret")
			switch {
			case tc.content != nil:
				if err := os.WriteFile(file, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			case tc.mkdir:
				if err := os.Mkdir(file, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Parse([]byte(client("secret", "", "secret_file", `"vpn.secret"`)), "radotp.toml", dir)
			if err == nil {
				t.Fatal("no error")
			}
			wantAll(t, err.Error(), append(tc.want, file)...)
			if strings.Contains(err.Error(), testSecret) {
				t.Error("error contains the secret")
			}
		})
	}
}

func TestSeveralErrorsAtOnce(t *testing.T) {
	// Problems come in the order of the example file, whatever their kind
	// and wherever they are in the file.
	src := client("mode", `"chap"`) + client("name", `"bad name"`, "address", `"192.0.2.1"`, "secret", "") +
		"[log]\nlevel = \"loud\"\n[totp]\ndigits = 7\nalgorithm = \"MD5\"\n[radius]\nlistn = \"x\"\nworkers = 0\n"
	msg := parseErr(t, src)
	want := []string{
		`config: radotp.toml: radius.workers = 0: must be from 1 to 4096`,
		`config: radotp.toml: unknown key "radius.listn" (did you mean "radius.listen"?)`,
		`config: radotp.toml: totp.algorithm = "MD5": must be one of SHA1, SHA256, SHA512`,
		`config: radotp.toml: totp.digits = 7: must be 6 or 8`,
		`config: radotp.toml: log.level = "loud": must be one of debug, info, warn, error`,
		`config: radotp.toml: client "vpn": mode = "chap": must be one of append, otp, challenge, auto`,
		`config: radotp.toml: client "bad name": name = "bad name": must be letters, digits, '.', '_' and '-' only`,
		`config: radotp.toml: client "bad name": address = "192.0.2.1": same network 192.0.2.1/32 as client "vpn"; each network may belong to one client only`,
		`config: radotp.toml: client "bad name": no secret: set secret or secret_file`,
	}
	if got := strings.Split(msg, "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\n\nwant\n%s", msg, strings.Join(want, "\n"))
	}
	t.Run("Deterministic", func(t *testing.T) {
		for range 20 {
			if again := parseErr(t, src); again != msg {
				t.Fatalf("messages differ between runs:\n%s\n---\n%s", msg, again)
			}
		}
	})
	t.Run("NoName", func(t *testing.T) {
		_, err := Parse([]byte("[totp]\ndigits = 7\n"), "", "")
		if err == nil || err.Error() != "config: totp.digits = 7: must be 6 or 8" {
			t.Errorf("got %v", err)
		}
	})
}

func TestWarnings(t *testing.T) {
	long := `"` + testSecret + `"`
	for _, tc := range []struct {
		name, src string
		want      []string // each must be in some warning; nil: no warnings
	}{
		{"None", client("secret", long), nil},
		{"NoClients", "", []string{"no [[client]] is configured"}},
		{"ShortSecret", client("secret", `"hunter2hunt"`), []string{`client "vpn": secret is 11 bytes; use at least 16 random bytes`}},
		{"NoMessageAuthenticator", client("require_message_authenticator", "false"), []string{`client "vpn": require_message_authenticator = false`, "CVE-2024-3596"}},
		{"HostBits", client("address", `"192.0.2.77/24"`), []string{`client "vpn": address "192.0.2.77/24" has host bits set; it means 192.0.2.0/24`}},
		{"Everyone", client("address", `"::/0"`), []string{`client "vpn": address "::/0" accepts requests from every address`}},
		{"PolicyDisabled", "[policy]\ndefault = \"disabled\"\n" + client(), []string{`policy.default = "disabled"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustParse(t, tc.src).Warnings()
			all := strings.Join(w, "\n")
			if tc.want == nil && len(w) != 0 {
				t.Errorf("unexpected warnings: %q", w)
			}
			wantAll(t, all, tc.want...)
			if strings.Contains(all, testSecret) || strings.Contains(all, "hunter2hunt") {
				t.Errorf("warnings contain the secret: %q", w)
			}
		})
	}
	t.Run("BuiltInCode", func(t *testing.T) {
		c := Default()
		c.Clients = []Client{{Name: "x", Secret: "short"}}
		wantAll(t, strings.Join(c.Warnings(), "\n"), `client "x": secret is 5 bytes`)
	})
}

func TestLoad(t *testing.T) {
	t.Run("ResolvesAgainstFileDir", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "etc", "radotp.toml")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", "vpn.secret"), []byte(testSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		src := "[database]\npath = \"data/radotp.db\"\n" + client("secret", "", "secret_file", `"vpn.secret"`)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want string
		}{
			{"Path", c.Path, path},
			{"database.path", c.Database.Path, filepath.Join(dir, "etc", "data", "radotp.db")},
			{"database.key_file", c.Database.KeyFile, filepath.Join(dir, "etc", "radotp.key")},
			{"secret_file", c.Clients[0].SecretFile, filepath.Join(dir, "etc", "vpn.secret")},
			{"secret", string(c.Clients[0].SecretBytes), testSecret},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
			}
		}
	})
	t.Run("RelativePath", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		if err := os.WriteFile("radotp.toml", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load("radotp.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c.Path != "radotp.toml" || c.Database.Path != filepath.Join(dir, "radotp.db") {
			t.Errorf("Path %q, database.path %q", c.Path, c.Database.Path)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.toml")
		_, err := Load(path)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v, want a not-exist error", err)
		}
		wantAll(t, err.Error(), "config: ", path)
	})
	t.Run("ErrorsNameTheFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "radotp.toml")
		if err := os.WriteFile(path, []byte("[totp]\ndigits = 7\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || err.Error() != "config: "+path+": totp.digits = 7: must be 6 or 8" {
			t.Errorf("got %v", err)
		}
	})
}

func TestEnrollmentAndSMTP(t *testing.T) {
	dir := t.TempDir()
	token := strings.Repeat("t0k3n", 8) // 40 characters
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "smtp.pw"), []byte("mail-pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
[enrollment]
listen = "127.0.0.1:8080"
public_url = "https://radotp.example.org/enroll-site/"
link_ttl = "48h"
max_attempts = 3
self_service = true
mail_link_when_not_enrolled = true
api_token_file = "api.token"
support_contact = "the IT desk, help@example.org"
trusted_proxies = ["10.0.0.1", "192.0.2.0/24"]
[smtp]
host = "mail.example.org"
port = 465
from = "radotp <radotp@example.org>"
username = "radotp"
password_file = "smtp.pw"
tls = "implicit"
timeout = "20s"
` + client()
	c, err := Parse([]byte(src), "radotp.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	e, s := c.Enrollment, c.SMTP
	if e.PublicURL != "https://radotp.example.org/enroll-site" {
		t.Errorf("public_url %q: trailing slash not trimmed", e.PublicURL)
	}
	if e.LinkTTL.Duration != 48*time.Hour || e.MaxAttempts != 3 || !e.SelfServiceOn() || !e.MailWhenNotEnrolled() ||
		string(e.APIToken) != token || e.APITokenFile != filepath.Join(dir, "api.token") || e.SupportContact != "the IT desk, help@example.org" {
		t.Errorf("enrollment %+v", e)
	}
	if len(e.TrustedProxyPrefixes) != 2 || e.TrustedProxyPrefixes[0] != netip.MustParsePrefix("10.0.0.1/32") {
		t.Errorf("trusted proxies %v", e.TrustedProxyPrefixes)
	}
	if s.Host != "mail.example.org" || s.Port != 465 || s.TLS != SMTPImplicit || string(s.Password) != "mail-pass" ||
		s.Timeout.Duration != 20*time.Second || s.PasswordFile != filepath.Join(dir, "smtp.pw") {
		t.Errorf("smtp %+v", s)
	}
	w := strings.Join(c.Warnings(), "\n")
	wantAll(t, w, "smtp.password_file", "chmod 600")
	if strings.Contains(w, "mail-pass") || strings.Contains(w, token) {
		t.Errorf("warnings show a secret: %s", w)
	}

	t.Run("Defaults", func(t *testing.T) {
		c := mustParse(t, client())
		if c.Enrollment.Listen != "" || c.Enrollment.SelfServiceOn() || c.Enrollment.MailWhenNotEnrolled() ||
			c.Enrollment.APIToken != nil || c.SMTP.Host != "" || c.SMTP.TLS != SMTPStartTLS || c.SMTP.Port != 587 {
			t.Errorf("defaults: %+v %+v", c.Enrollment, c.SMTP)
		}
	})
	t.Run("ShortAPIToken", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "short.token"), []byte("abc\n"), 0o600)
		_, err := Parse([]byte("[enrollment]\napi_token_file = \"short.token\"\n"), "radotp.toml", dir)
		if err == nil || !strings.Contains(err.Error(), "at least 32 characters") || strings.Contains(err.Error(), "abc") {
			t.Errorf("short token: %v", err)
		}
	})
	t.Run("PlainAuthToRemote", func(t *testing.T) {
		_, err := Parse([]byte("[smtp]\nhost = \"mail.example.org\"\nfrom = \"r@example.org\"\nusername = \"r\"\npassword_file = \"smtp.pw\"\ntls = \"none\"\n"), "radotp.toml", dir)
		if err == nil || !strings.Contains(err.Error(), `smtp.tls = "none": would send the SMTP password in the clear`) {
			t.Errorf("tls none with a password to a remote host: %v", err)
		}
		if _, err := Parse([]byte("[smtp]\nhost = \"127.0.0.1\"\nfrom = \"r@example.org\"\nusername = \"r\"\npassword_file = \"smtp.pw\"\ntls = \"none\"\n"), "radotp.toml", dir); err != nil {
			t.Errorf("tls none to loopback: %v", err)
		}
	})
	t.Run("Warnings", func(t *testing.T) {
		for _, tc := range []struct{ src, want string }{
			{"[enrollment]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"http://radotp.example.org\"\n", "is http://: users would get their TOTP key over the network without TLS"},
			{"[enrollment]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"https://radotp.example.org\"\n", "make sure only the TLS proxy"},
			{"[enrollment]\nself_service = true\n", "enrollment.self_service = true, but enrollment.listen is empty"},
		} {
			wantAll(t, strings.Join(mustParse(t, tc.src+client()).Warnings(), "\n"), tc.want)
		}
		if w := mustParse(t, "[enrollment]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n"+client()).Warnings(); len(w) != 0 {
			t.Errorf("loopback http site: warnings %q", w)
		}
	})
}

// TestIsLoopbackHost: host names are case-insensitive, so LOCALHOST and
// localhost. are loopback as much as localhost is; nothing else is.
func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "LocalHost.": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"localhost.example.org": false, "localhostx": false, "10.0.0.1": false, "": false, "::": false, "example.org": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
