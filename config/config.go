// Package config reads radotp's TOML configuration file: the schema, the
// defaults, a strict decoder and the validation of every value.
//
// Load (or Parse) returns a Config that is complete and valid: keys the file
// leaves out get their defaults, relative paths are resolved against the
// directory of the file, client addresses are parsed into prefixes and client
// secrets are read from their files. config.example.toml at the root of the
// repository documents every key; a test keeps the two in step.
//
// # Errors
//
// Decoding is strict: a key that is not in the schema (including a key that
// differs only in case), a value of the wrong type and a value outside its
// allowed set are all errors. Every message starts with "config: " and the
// file name, then names the key, the value found and what is allowed:
//
//	config: radotp.toml: line 4, column 9: expected value but found "x" instead
//	config: radotp.toml: unknown key "radius.listn" (did you mean "radius.listen"?)
//	config: radotp.toml: totp.digits = 7: must be 6 or 8
//	config: radotp.toml: client "vpn": mode = "chap": must be one of append, otp
//
// All problems found are reported at once, joined with errors.Join (one per
// line), so an administrator can fix the whole file in one go. Syntax errors
// stop at the first one, as the rest of the file cannot be read reliably.
// Client secrets never appear in errors or warnings.
//
// Things that are allowed but probably unwanted (no clients, a short secret,
// Message-Authenticator not required, ...) are reported by Config.Warnings.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Duration is a time.Duration written in TOML as a string such as "30s",
// "15m" or "24h" (any string time.ParseDuration accepts).
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string such as "30s".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %s: write a number and a unit (ms, s, m, h), e.g. \"30s\", \"15m\", \"24h\"", show(string(text)))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in time.Duration.String form ("15m0s").
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Config is the whole configuration file.
type Config struct {
	Radius   Radius   `toml:"radius"`
	Database Database `toml:"database"`
	TOTP     TOTP     `toml:"totp"`
	Lockout  Lockout  `toml:"lockout"`
	Policy   Policy   `toml:"policy"`
	Clients  []Client `toml:"client"`
	Audit    Audit    `toml:"audit"`
	Metrics  Metrics  `toml:"metrics"`
	Log      Log      `toml:"log"`

	Enrollment Enrollment `toml:"enrollment"` // the enrollment web site
	SMTP       SMTP       `toml:"smtp"`       // mail for enrollment links

	FirstFactor FirstFactor `toml:"first_factor"` // where passwords are checked: local, ldap, radius, none

	// Path is the file the configuration was loaded from ("" if it was
	// parsed from bytes).
	Path string `toml:"-"`

	// warnings found while loading that cannot be recomputed later (file
	// permissions); Warnings adds the ones computed from the values.
	loadWarnings []string
}

// Radius configures the RADIUS listener.
type Radius struct {
	Listen         string   `toml:"listen"`           // UDP host:port; default "127.0.0.1:1812"
	Workers        int      `toml:"workers"`          // requests handled at once; default 128, 1..4096
	QueueSize      int      `toml:"queue_size"`       // requests waiting for a worker; default 256, 1..1048576
	ReplyCacheTTL  Duration `toml:"reply_cache_ttl"`  // how long a request is remembered for retransmissions; default 30s, 5s..5m
	ReplyCacheSize int      `toml:"reply_cache_size"` // requests remembered at most; default 1048576, 1024..16777216
	ReceiveBuffer  int      `toml:"receive_buffer"`   // socket receive buffer, bytes; 0 (default): the system's
}

// Database says where the data and the key sealing the TOTP secrets live.
// Relative paths are resolved against the directory of the config file.
type Database struct {
	Path    string `toml:"path"`     // SQLite file; default "radotp.db"
	KeyFile string `toml:"key_file"` // AES-256 key file, created 0600 if missing; default "radotp.key"
}

// TOTP holds the parameters of new tokens and of code checking.
type TOTP struct {
	Issuer          string   `toml:"issuer"`           // shown in authenticator apps; default "radotp"; no ':'
	Algorithm       string   `toml:"algorithm"`        // SHA1, SHA256 or SHA512 (stored upper case); default "SHA1"
	Digits          int      `toml:"digits"`           // 6 or 8; default 6
	Period          Duration `toml:"period"`           // whole seconds, 15s..300s; default 30s
	Skew            int      `toml:"skew"`             // steps accepted each side of now, 0..5; default 1
	ActivationDelay Duration `toml:"activation_delay"` // a confirmed token works after this, 0..168h; default 15m
}

// Lockout limits guessing.
type Lockout struct {
	MaxFailures int      `toml:"max_failures"` // consecutive failures before locking, 1..1000; default 10
	Duration    Duration `toml:"duration"`     // how long a user stays locked, 1s..720h; default 15m
}

// Policy is the default second-factor policy.
type Policy struct {
	Default         string   `toml:"default"`          // required, optional or disabled; default "required"
	TrustedNetworks []string `toml:"trusted_networks"` // CIDRs; a Calling-Station-Id inside one needs no second factor

	TrustedPrefixes []netip.Prefix `toml:"-"` // TrustedNetworks, parsed and masked
}

// Audit configures the stored record of decisions.
type Audit struct {
	Retention Duration `toml:"retention"` // decisions older than this are pruned; default 2160h (90 days), 1h..87600h
}

// Enrollment configures the enrollment web site, where users get their
// token from a one-time link. Relative paths are resolved against the
// directory of the config file.
type Enrollment struct {
	Listen                  string   `toml:"listen"`                      // TCP host:port; "" = no site; default ""
	PublicURL               string   `toml:"public_url"`                  // http(s)://host[:port][/path] users reach the site at; links are built from it
	CertFile                string   `toml:"cert_file"`                   // PEM certificate; with key_file the site serves HTTPS
	KeyFile                 string   `toml:"key_file"`                    // PEM private key of cert_file
	LinkTTL                 Duration `toml:"link_ttl"`                    // how long a link works; default 24h, 5m..720h
	MaxAttempts             int      `toml:"max_attempts"`                // wrong codes that void a link; default 5, 1..100
	SelfService             *bool    `toml:"self_service"`                // /login with the password; default false
	MailLinkWhenNotEnrolled *bool    `toml:"mail_link_when_not_enrolled"` // mail a link to required users without a token; default false
	APITokenFile            string   `toml:"api_token_file"`              // bearer token of POST /api/enroll-links; "" = no API
	SupportContact          string   `toml:"support_contact"`             // whom users contact, in pages and mails
	TrustedProxies          []string `toml:"trusted_proxies"`             // CIDRs whose X-Forwarded-For is believed

	// Filled by Load and Parse.
	TrustedProxyPrefixes []netip.Prefix `toml:"-"` // TrustedProxies, parsed and masked
	APIToken             []byte         `toml:"-"` // the content of APITokenFile
}

// SelfServiceOn reports whether self_service is true (unset means false).
func (e Enrollment) SelfServiceOn() bool { return e.SelfService != nil && *e.SelfService }

// MailWhenNotEnrolled reports whether mail_link_when_not_enrolled is true
// (unset means false).
func (e Enrollment) MailWhenNotEnrolled() bool {
	return e.MailLinkWhenNotEnrolled != nil && *e.MailLinkWhenNotEnrolled
}

// SMTP values of smtp.tls.
const (
	SMTPStartTLS = "starttls" // plain connection, then STARTTLS; refuse a server without it
	SMTPImplicit = "implicit" // TLS from the first byte (port 465)
	SMTPNone     = "none"     // no TLS at all: only for a relay on loopback
)

// SMTP configures outgoing mail (enrollment links and confirmations).
type SMTP struct {
	Host         string   `toml:"host"`          // "" = no mail; default ""
	Port         int      `toml:"port"`          // default 587
	From         string   `toml:"from"`          // sender address; required with host
	Username     string   `toml:"username"`      // "" = no SMTP AUTH
	PasswordFile string   `toml:"password_file"` // file holding the AUTH password; required with username
	TLS          string   `toml:"tls"`           // starttls, implicit or none; default "starttls"
	Timeout      Duration `toml:"timeout"`       // for one message, connecting included; default 10s, 1s..5m

	// Filled by Load and Parse.
	Password []byte `toml:"-"` // the content of PasswordFile
}

// Policy values.
const (
	PolicyRequired = "required"
	PolicyOptional = "optional"
	PolicyDisabled = "disabled"
)

// Client modes.
const (
	ModeAppend    = "append"    // User-Password is the password followed by the code
	ModeOTP       = "otp"       // User-Password is the code only
	ModeChallenge = "challenge" // the password, then the code after an Access-Challenge
	ModeAuto      = "auto"      // challenge if the password alone passes, else password+code
)

// Defaults of the challenge keys of a client.
const (
	DefaultChallengePrompt = "Enter your verification code"
	DefaultChallengeTTL    = 2 * time.Minute
)

// Client is one RADIUS client (NAS): a VPN or SSH gateway allowed to ask.
type Client struct {
	Name                        string   `toml:"name"`                          // required, unique, [A-Za-z0-9._-]+
	Address                     string   `toml:"address"`                       // CIDR or bare IP (= /32 or /128)
	Secret                      string   `toml:"secret"`                        // shared secret; exactly one of secret / secret_file
	SecretFile                  string   `toml:"secret_file"`                   // file holding the secret; trailing newline trimmed
	Mode                        string   `toml:"mode"`                          // append or otp; default "append"
	Separator                   string   `toml:"separator"`                     // mode append only: between password and code; default ""
	RequireMessageAuthenticator *bool    `toml:"require_message_authenticator"` // nil = true
	Policy                      string   `toml:"policy"`                        // "" = policy.default; required, optional or disabled
	ChallengePrompt             string   `toml:"challenge_prompt"`              // modes challenge/auto: Reply-Message asking for the code
	ChallengeTTL                Duration `toml:"challenge_ttl"`                 // modes challenge/auto: time to answer a challenge; default 2m

	FirstFactor string `toml:"first_factor"` // "" = first_factor.backend; local, ldap, radius or none

	// Filled by Load and Parse.
	Prefix      netip.Prefix `toml:"-"` // Address, parsed and masked
	SecretBytes []byte       `toml:"-"` // Secret, or the content of SecretFile
}

// RequiresMessageAuthenticator reports whether Access-Requests from this
// client must carry a valid Message-Authenticator. Unset means true.
func (cl Client) RequiresMessageAuthenticator() bool {
	return cl.RequireMessageAuthenticator == nil || *cl.RequireMessageAuthenticator
}

// setDefaults gives a client read from the file its defaults before its keys
// are decoded over them.
func (cl *Client) setDefaults() {
	cl.Mode = ModeAppend
	cl.ChallengePrompt = DefaultChallengePrompt
	cl.ChallengeTTL = Duration{DefaultChallengeTTL}
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	Listen string `toml:"listen"` // TCP host:port for /metrics; "" = off; default "127.0.0.1:9812"
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn or error; default "info"
	Format string `toml:"format"` // text or json; default "text"
}

// Default returns a configuration with every default and no clients.
func Default() *Config {
	return &Config{
		Radius: Radius{
			Listen:         "127.0.0.1:1812",
			Workers:        128,
			QueueSize:      256,
			ReplyCacheTTL:  Duration{30 * time.Second},
			ReplyCacheSize: 1 << 20,
		},
		Database: Database{
			Path:    "radotp.db",
			KeyFile: "radotp.key",
		},
		TOTP: TOTP{
			Issuer:          "radotp",
			Algorithm:       "SHA1",
			Digits:          6,
			Period:          Duration{30 * time.Second},
			Skew:            1,
			ActivationDelay: Duration{15 * time.Minute},
		},
		Lockout: Lockout{
			MaxFailures: 10,
			Duration:    Duration{15 * time.Minute},
		},
		FirstFactor: defaultFirstFactor(),
		Enrollment: Enrollment{
			LinkTTL:                 Duration{24 * time.Hour},
			MaxAttempts:             5,
			SelfService:             new(false),
			MailLinkWhenNotEnrolled: new(false),
			SupportContact:          "your administrator",
		},
		SMTP: SMTP{
			Port:    587,
			TLS:     SMTPStartTLS,
			Timeout: Duration{10 * time.Second},
		},
		Policy:  Policy{Default: PolicyRequired},
		Audit:   Audit{Retention: Duration{90 * 24 * time.Hour}},
		Metrics: Metrics{Listen: "127.0.0.1:9812"},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// RequireMessageAuthenticator reports whether client i must send a valid
// Message-Authenticator; see Client.RequiresMessageAuthenticator.
func (c *Config) RequireMessageAuthenticator(i int) bool {
	return c.Clients[i].RequiresMessageAuthenticator()
}

// Load reads the file at path and parses it with Parse. Relative paths in the
// file are resolved against the directory of path. Config.Path is set to path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, err := Parse(data, path, dir)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse decodes and validates a configuration. name is the file name used in
// error messages. Relative paths in the configuration (database.path,
// database.key_file, client secret_file, the enrollment.* and smtp.* files)
// are resolved against baseDir; if baseDir is "", they stay relative to the
// working directory. Client secret_file, enrollment.api_token_file and
// smtp.password_file are read here.
//
// The error, if any, lists every problem found, one per line.
func Parse(data []byte, name, baseDir string) (*Config, error) {
	p := &problems{name: name}
	c := Default()
	if err := decode(data, c, p); err != nil {
		return nil, err // a syntax error
	}
	// Unknown keys and wrong types are in p; keys whose value could not be
	// decoded kept their default, so validating the rest is still useful.
	c.resolvePaths(baseDir)
	c.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// resolvePaths makes relative paths relative to baseDir.
func (c *Config) resolvePaths(baseDir string) {
	c.Database.Path = resolve(baseDir, c.Database.Path)
	c.Database.KeyFile = resolve(baseDir, c.Database.KeyFile)
	for i := range c.Clients {
		c.Clients[i].SecretFile = resolve(baseDir, c.Clients[i].SecretFile)
	}
	c.Enrollment.CertFile = resolve(baseDir, c.Enrollment.CertFile)
	c.Enrollment.KeyFile = resolve(baseDir, c.Enrollment.KeyFile)
	c.Enrollment.APITokenFile = resolve(baseDir, c.Enrollment.APITokenFile)
	c.SMTP.PasswordFile = resolve(baseDir, c.SMTP.PasswordFile)
	c.resolveFirstFactorPaths(baseDir)
}

func resolve(baseDir, p string) string {
	if p == "" || baseDir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}
