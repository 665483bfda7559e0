// Package slapdtest runs a real OpenLDAP slapd for tests, on loopback ports,
// with its configuration, database and TLS certificates in a temporary
// directory. It needs Debian's slapd and ldap-utils; without them the test is
// skipped, or fails when RADOTP_E2E=1 (as in CI).
//
// The directory has the suffix dc=example,dc=org with ou=people and ou=groups;
// tests add their own entries with Add (ldapadd as the root DN).
package slapdtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The directory's fixed names.
const (
	Suffix        = "dc=example,dc=org"
	People        = "ou=people," + Suffix
	Groups        = "ou=groups," + Suffix
	AdminDN       = "cn=admin," + Suffix
	AdminPassword = "slapdtest-admin-secret"
)

// Server is a running slapd.
type Server struct {
	URL    string         // ldap://127.0.0.1:PORT (plain, StartTLS offered)
	TLSURL string         // ldaps://127.0.0.1:PORT
	CAFile string         // PEM of the CA that signed the server certificate
	CAPool *x509.CertPool // the same CA
	Dir    string         // configuration, database, certificates

	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// RequireTools skips the test when slapd or ldap-utils are missing, or
// fails it when RADOTP_E2E=1.
func RequireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"slapd", "ldapadd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + tool); err == nil {
				continue
			}
			msg := tool + " not installed (apt-get install slapd ldap-utils)"
			if os.Getenv("RADOTP_E2E") == "1" {
				t.Fatal("RADOTP_E2E=1: " + msg)
			}
			t.Skip(msg)
		}
	}
}

func slapdPath() string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	return "/usr/sbin/slapd"
}

// Start starts slapd with an empty directory (the suffix, ou=people,
// ou=groups) and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	RequireTools(t)
	dir := t.TempDir()
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "ca.pem")}
	s.CAPool = writeCerts(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
maxsize 10485760
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
dbnosync
`, dir, Suffix, AdminDN, AdminPassword)
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ldapPort, ldapsPort := FreePort(t), FreePort(t)
	s.URL = "ldap://127.0.0.1:" + strconv.Itoa(ldapPort)
	s.TLSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ldapsPort)
	// -d 0: stay in the foreground (no fork), log nothing but errors.
	s.args = []string{"-f", confFile, "-h", s.URL + "/ " + s.TLSURL + "/", "-d", "0"}
	s.start(t)
	t.Cleanup(s.kill)
	s.Add(t, fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: %s
objectClass: organizationalUnit
ou: people

dn: %s
objectClass: organizationalUnit
ou: groups
`, Suffix, People, Groups))
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	s.out.Reset()
	cmd := exec.Command(slapdPath(), s.args...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		t.Fatalf("slapd: %v", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() { cmd.Wait(); close(done) }()

	addr := strings.TrimPrefix(s.URL, "ldap://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("slapd exited at start:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			t.Fatalf("slapd did not listen on %s:\n%s", addr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// Log is what slapd wrote since it was (re)started.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Stop stops slapd (SIGTERM) and waits until it has exited: the directory
// is down, its ports refuse connections.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("slapd did not stop on SIGTERM")
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Restart starts a stopped slapd again, on the same ports with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-done
	}
}

// Add adds LDIF entries as the root DN, with ldapadd.
func (s *Server) Add(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command("ldapadd", "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapadd: %v\n%s\nLDIF:\n%s", err, out, ldif)
	}
}

// User returns the LDIF of an inetOrgPerson uid=NAME under ou=people with
// the password pw ({SSHA}). Names with DN specials must be given escaped.
func User(uid, pw string) string {
	return fmt.Sprintf("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n",
		uid, People, uid, uid, uid, SSHA(pw))
}

// Group returns the LDIF of a groupOfNames cn=NAME under ou=groups whose
// members are the given users of ou=people.
func Group(cn string, uids ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n", cn, Groups, cn)
	for _, u := range uids {
		fmt.Fprintf(&b, "member: uid=%s,%s\n", u, People)
	}
	b.WriteString("\n")
	return b.String()
}

// SSHA returns pw hashed as OpenLDAP's {SSHA} (salted SHA-1), as slappasswd
// writes it.
func SSHA(pw string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	h := sha1.Sum(append([]byte(pw), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts writes ca.pem, server.pem and server.key (for 127.0.0.1 and
// localhost) into dir and returns a pool with the CA.
func writeCerts(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "slapdtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}
