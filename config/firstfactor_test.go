package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const ldapTemplate = `[first_factor]
backend = "ldap"
[first_factor.ldap]
urls = ["ldaps://ldap.example.org", "ldap://192.0.2.10:3389"]
bind_dn_template = "uid=%s,ou=people,dc=example,dc=org"
allow_cleartext = true
`

const radiusUpstream = `[first_factor]
backend = "radius"
[first_factor.radius]
servers = ["192.0.2.20:1812", "[2001:db8::20]:1812", "nps.example.org:1645"]
secret = "` + testSecret + `"
`

func TestFirstFactorDefaults(t *testing.T) {
	c := mustParse(t, "")
	f := c.FirstFactor
	if f.Backend != BackendLocal || f.AutoCreate() || f.AutoCreateUsers == nil {
		t.Errorf("backend %q auto_create %v; want local, false (set)", f.Backend, f.AutoCreateUsers)
	}
	l := f.LDAP
	if l.UsesStartTLS() || l.Filter != "(uid=%s)" || l.GroupAttribute != "member" || l.Timeout.Duration != 5*time.Second || l.PoolSize != 8 || l.URLs != nil {
		t.Errorf("ldap defaults: %+v", l)
	}
	r := f.Radius
	if !r.RequiresMessageAuthenticator() || r.Timeout.Duration != 2*time.Second || r.Retries != 1 || r.NASIdentifier != "radotp" || r.Servers != nil {
		t.Errorf("radius defaults: %+v", r)
	}
	if (UpstreamRadius{}).RequiresMessageAuthenticator() != true || (LDAP{}).UsesStartTLS() || (FirstFactor{}).AutoCreate() {
		t.Error("nil pointers must mean the defaults")
	}
	// Sections of backends nobody uses are not checked (they may be
	// prepared before switching over).
	c = mustParse(t, "[first_factor.ldap]\nurls = [\"gopher://x\"]\n[first_factor.radius]\nservers = [\"nope\"]\n")
	if c.UsesBackend(BackendLDAP) || c.UsesBackend(BackendRadius) || !c.UsesBackend(BackendLocal) {
		t.Error("UsesBackend wrong for the default config")
	}
}

func TestFirstFactorLDAP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bind.pw"), []byte("s3rvice\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("pem"), 0o644)
	src := `[first_factor]
backend = "ldap"
auto_create_users = true
[first_factor.ldap]
urls = ["ldap://dc1.example.org", "ldap://dc2.example.org:389/"]
start_tls = true
ca_file = "ca.pem"
bind_dn = "cn=radotp,ou=services,dc=example,dc=org"
bind_password_file = "bind.pw"
base_dn = "dc=example,dc=org"
filter = "(&(objectClass=user)(sAMAccountName=%s))"
group_attribute = "member:1.2.840.113556.1.4.1941:"
required_group = "cn=vpn,ou=groups,dc=example,dc=org"
exempt_group = "cn=no-2fa,ou=groups,dc=example,dc=org"
timeout = "2s"
pool_size = 4
`
	c, err := Parse([]byte(src), "radotp.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	l := c.FirstFactor.LDAP
	if string(l.BindPassword) != "s3rvice" || l.CAFile != filepath.Join(dir, "ca.pem") || l.BindPasswordFile != filepath.Join(dir, "bind.pw") {
		t.Errorf("files: password %q ca %q", l.BindPassword, l.CAFile)
	}
	if !c.FirstFactor.AutoCreate() || !l.UsesStartTLS() || l.PoolSize != 4 {
		t.Errorf("values not decoded: %+v", c.FirstFactor)
	}
	if w := c.Warnings(); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "clear text") }) {
		t.Errorf("StartTLS on: no clear-text warning expected: %q", w)
	}
	mustParse(t, ldapTemplate)

	// A client may use LDAP while the default stays local; then the
	// section is checked.
	msg := parseErr(t, client("first_factor", `"ldap"`))
	wantAll(t, msg, "first_factor.ldap.urls is required with the ldap backend")
	if c := mustParse(t, ldapTemplate+client("first_factor", `"local"`)); !c.UsesBackend(BackendLocal) || !c.UsesBackend(BackendLDAP) {
		t.Error("UsesBackend misses a client's backend")
	}
}

func TestFirstFactorValidation(t *testing.T) {
	const ldapBase = "[first_factor]\nbackend = \"ldap\"\n[first_factor.ldap]\n"
	const tmpl = "bind_dn_template = \"uid=%s,dc=example,dc=org\"\n"
	const urls = "urls = [\"ldaps://ldap.example.org\"]\n"
	const radiusBase = "[first_factor]\nbackend = \"radius\"\n[first_factor.radius]\n"
	const servers = "servers = [\"192.0.2.20:1812\"]\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"Backend", "[first_factor]\nbackend = \"kerberos\"\n", []string{`first_factor.backend = "kerberos": must be one of local, ldap, radius, none`}},
		{"AutoCreateNotBool", "[first_factor]\nauto_create_users = \"yes\"\n", []string{`first_factor.auto_create_users = "yes": must be true or false`}},
		{"ClientBackend", client("first_factor", `"pam"`), []string{`client "vpn": first_factor = "pam": must be one of local, ldap, radius, none`}},
		{"UnknownKey", ldapBase + urls + tmpl + "bind_dn_templat = \"x\"\n", []string{`unknown key "first_factor.ldap.bind_dn_templat" (did you mean "first_factor.ldap.bind_dn_template"?)`}},

		{"LDAPNoURLs", ldapBase + tmpl, []string{`first_factor.ldap.urls is required`}},
		{"LDAPURLScheme", ldapBase + "urls = [\"https://ldap.example.org\"]\n" + tmpl, []string{`first_factor.ldap.urls = "https://ldap.example.org": must be an LDAP URL`}},
		{"LDAPURLPath", ldapBase + "urls = [\"ldap://ldap.example.org/dc=example,dc=org\"]\n" + tmpl, []string{`must be only scheme://host[:port]; put the base DN in base_dn`}},
		{"LDAPURLPort", ldapBase + "urls = [\"ldap://ldap.example.org:0\"]\n" + tmpl, []string{`port must be a number from 1 to 65535`}},
		{"LDAPCleartextRefused", ldapBase + "urls = [\"ldap://ldap.example.org\"]\n" + tmpl, []string{`first_factor.ldap.urls = "ldap://ldap.example.org": would send users' passwords in clear text`}},
		{"LDAPURLHost", ldapBase + "urls = [\"ldap://exa_mple\"]\n" + tmpl, []string{`host must be an IP address or a host name`}},
		{"LDAPStartTLSWithLDAPS", ldapBase + urls + tmpl + "start_tls = true\n", []string{`first_factor.ldap.start_tls = true: StartTLS is for ldap:// URLs`}},
		{"LDAPCAFileMissing", ldapBase + urls + tmpl + "ca_file = \"/nonexistent/ca.pem\"\n", []string{`first_factor.ldap.ca_file = "/nonexistent/ca.pem": no such file or directory`}},
		{"LDAPBothModes", ldapBase + urls + tmpl + "base_dn = \"dc=example,dc=org\"\n", []string{`bind_dn_template and first_factor.ldap.base_dn are both set`}},
		{"LDAPNoMode", ldapBase + urls, []string{`the ldap backend needs first_factor.ldap.bind_dn_template`}},
		{"LDAPTemplateNoPlaceholder", ldapBase + urls + "bind_dn_template = \"uid=alice,dc=example,dc=org\"\n", []string{`first_factor.ldap.bind_dn_template = "uid=alice,dc=example,dc=org": must contain %s exactly once`}},
		{"LDAPTemplateTwice", ldapBase + urls + "bind_dn_template = \"uid=%s,cn=%s\"\n", []string{`must contain %s exactly once`}},
		{"LDAPTemplateOtherVerb", ldapBase + urls + "bind_dn_template = \"uid=%s,cn=%d\"\n", []string{`must contain %s exactly once`}},
		{"LDAPTemplateNotDN", ldapBase + urls + "bind_dn_template = \"%s@example.org\"\n", []string{`must be a DN such as "uid=%s,ou=people,dc=example,dc=org"`}},
		{"LDAPBaseDN", ldapBase + urls + "base_dn = \"example.org\"\n", []string{`first_factor.ldap.base_dn = "example.org": must be a DN`}},
		{"LDAPFilterNoParens", ldapBase + urls + "base_dn = \"dc=example,dc=org\"\nfilter = \"uid=%s\"\n", []string{`first_factor.ldap.filter = "uid=%s": must be an LDAP filter in parentheses`}},
		{"LDAPFilterUnbalanced", ldapBase + urls + "base_dn = \"dc=example,dc=org\"\nfilter = \"(&(uid=%s)\"\n", []string{`must be an LDAP filter in parentheses`}},
		{"LDAPFilterTwoFilters", ldapBase + urls + "base_dn = \"dc=example,dc=org\"\nfilter = \"(uid=%s)(cn=x)\"\n", []string{`must be an LDAP filter in parentheses`}},
		{"LDAPFilterNoPlaceholder", ldapBase + urls + "base_dn = \"dc=example,dc=org\"\nfilter = \"(uid=alice)\"\n", []string{`first_factor.ldap.filter = "(uid=alice)": must contain %s exactly once`}},
		{"LDAPBindDNWithoutPassword", ldapBase + urls + tmpl + "bind_dn = \"cn=svc,dc=example,dc=org\"\n", []string{`first_factor.ldap.bind_dn is set but first_factor.ldap.bind_password_file is not`}},
		{"LDAPPasswordWithoutBindDN", ldapBase + urls + tmpl + "bind_password_file = \"pw\"\n", []string{`first_factor.ldap.bind_password_file is set but first_factor.ldap.bind_dn is not`}},
		{"LDAPPasswordFileMissing", ldapBase + urls + tmpl + "bind_dn = \"cn=svc,dc=example,dc=org\"\nbind_password_file = \"/nonexistent/pw\"\n", []string{`first_factor.ldap.bind_password_file = "/nonexistent/pw": no such file or directory`}},
		{"LDAPGroupAttribute", ldapBase + urls + tmpl + "group_attribute = \"member)(uid=*\"\n", []string{`first_factor.ldap.group_attribute = "member)(uid=*": must be an attribute name`}},
		{"LDAPRequiredGroup", ldapBase + urls + tmpl + "required_group = \"vpn-users\"\n", []string{`first_factor.ldap.required_group = "vpn-users": must be a DN`}},
		{"LDAPExemptGroup", ldapBase + urls + tmpl + "exempt_group = \"x\"\n", []string{`first_factor.ldap.exempt_group = "x": must be a DN`}},
		{"LDAPTimeout", ldapBase + urls + tmpl + "timeout = \"2m\"\n", []string{`first_factor.ldap.timeout = "2m": must be from 100ms to 1m`}},
		{"LDAPPoolSize", ldapBase + urls + tmpl + "pool_size = 0\n", []string{`first_factor.ldap.pool_size = 0: must be from 1 to 256`}},

		{"RadiusNoServers", radiusBase + "secret = \"" + testSecret + "\"\n", []string{`first_factor.radius.servers is required`}},
		{"RadiusServerNoPort", radiusBase + "servers = [\"192.0.2.20\"]\nsecret = \"" + testSecret + "\"\n", []string{`first_factor.radius.servers = "192.0.2.20": must be host:port`}},
		{"RadiusServerPort", radiusBase + "servers = [\"192.0.2.20:0\"]\nsecret = \"" + testSecret + "\"\n", []string{`first_factor.radius.servers = "192.0.2.20:0": port must be a number from 1 to 65535`}},
		{"RadiusServerHost", radiusBase + "servers = [\"a b:1812\"]\nsecret = \"" + testSecret + "\"\n", []string{`host must be an IP address or a host name`}},
		{"RadiusNoSecret", radiusBase + servers, []string{`the radius backend needs a secret`}},
		{"RadiusBothSecrets", radiusBase + servers + "secret = \"" + testSecret + "\"\nsecret_file = \"s\"\n", []string{`both first_factor.radius.secret and first_factor.radius.secret_file are set`}},
		{"RadiusSecretFileMissing", radiusBase + servers + "secret_file = \"/nonexistent/s\"\n", []string{`first_factor.radius.secret_file = "/nonexistent/s": no such file or directory`}},
		{"RadiusSecretWrongType", radiusBase + servers + "secret = 987654321987\n", []string{`first_factor.radius.secret: must be a string`}},
		{"RadiusTimeout", radiusBase + servers + "secret = \"" + testSecret + "\"\ntimeout = \"1ms\"\n", []string{`first_factor.radius.timeout = "1ms": must be from 100ms to 30s`}},
		{"RadiusRetries", radiusBase + servers + "secret = \"" + testSecret + "\"\nretries = 11\n", []string{`first_factor.radius.retries = 11: must be from 0 to 10`}},
		{"RadiusNASIdentifier", radiusBase + servers + "secret = \"" + testSecret + "\"\nnas_identifier = \"\"\n", []string{`first_factor.radius.nas_identifier = "": must not be empty`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAll(t, parseErr(t, tc.src), tc.want...)
		})
	}
}

func TestFirstFactorRadius(t *testing.T) {
	c := mustParse(t, radiusUpstream)
	if r := c.FirstFactor.Radius; string(r.SecretBytes) != testSecret || len(r.Servers) != 3 {
		t.Errorf("radius: %d servers, secret filled %v", len(r.Servers), string(r.SecretBytes) == testSecret)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "up.secret"), []byte(testSecret+"\n"), 0o644)
	src := strings.Replace(radiusUpstream, `secret = "`+testSecret+`"`, `secret_file = "up.secret"`, 1)
	c, err := Parse([]byte(src), "radotp.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.FirstFactor.Radius.SecretBytes) != testSecret {
		t.Error("secret_file not read")
	}
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, "first_factor.radius.secret_file") || !strings.Contains(w, "chmod 600") || strings.Contains(w, testSecret) {
		t.Errorf("warnings for a world-readable secret_file: %s", w)
	}
}

func TestFirstFactorWarnings(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"None", "[first_factor]\nbackend = \"none\"\n", `first_factor.backend = "none": passwords are not checked`},
		{"ClearText", strings.Replace(ldapTemplate, `"ldaps://ldap.example.org", `, "", 1), `"ldap://192.0.2.10:3389" without start_tls: passwords cross the network in clear text`},
		{"ShortSecret", strings.Replace(radiusUpstream, testSecret, "short", 1), "first_factor.radius: secret is 5 bytes"},
		{"NoMessageAuthenticator", radiusUpstream + "require_message_authenticator = false\n", "replies without Message-Authenticator are believed"},
		{"SlowFailover", radiusUpstream + "timeout = \"5s\"\n", "a request may wait 30s for upstream servers"},
		{"AutoCreateLocal", "[first_factor]\nauto_create_users = true\n", "auto_create_users = true has no effect with the local backend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := strings.Join(mustParse(t, tc.src).Warnings(), "\n")
			if !strings.Contains(w, tc.want) {
				t.Errorf("warnings\n%s\ndo not contain %q", w, tc.want)
			}
			if strings.Contains(w, testSecret) {
				t.Errorf("a warning shows the secret")
			}
		})
	}
	sound := strings.Replace(radiusUpstream, `, "nps.example.org:1645"`, "", 1)
	if w := mustParse(t, sound).Warnings(); slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, "first_factor") }) {
		t.Errorf("a sound radius config has warnings: %q", w)
	}
}
