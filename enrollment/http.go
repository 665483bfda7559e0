package enrollment

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits of the HTTP server.
const (
	maxBody        = 16 << 10 // bytes of a form or API request body
	maxHeaderBytes = 16 << 10
	sweepEvery     = time.Hour
)

// The headers every response carries.
var securityHeaders = map[string]string{
	"Cache-Control":           "no-store",
	"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
	"Referrer-Policy":         "no-referrer",
	"X-Content-Type-Options":  "nosniff",
}

//go:embed static/style.css
var static embed.FS

// Handler returns the site: the enrollment pages, /login, the API and the
// style sheet, behind the security headers, body limits and
// http.CrossOriginProtection for every POST.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /static/style.css", s.css)
	mux.HandleFunc("GET /enroll/{token}", s.enrollPage)
	mux.HandleFunc("POST /enroll/{token}", s.enrollConfirm)
	mux.HandleFunc("GET /enroll/{token}/qr.png", s.qr)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /api/enroll-links", s.apiCreateLink)
	mux.HandleFunc("/", s.notFound)

	cop := http.NewCrossOriginProtection()
	if u, err := url.Parse(s.set.PublicURL); err == nil && u.Host != "" {
		// A proxy may change the Host header; the public origin is ours.
		_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(s.crossOrigin))
	h := cop.Handler(mux)

	https := strings.HasPrefix(s.set.PublicURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for k, v := range securityHeaders {
			hd.Set(k, v)
		}
		if https {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

// clientIP is the address of the user: the source address, or, from a
// trusted proxy, the last X-Forwarded-For address that is not a trusted proxy.
func (s *Service) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if !s.trusted(a) {
		return a
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // junk: believe nothing further left
		}
		a = h.Unmap()
		if !s.trusted(a) {
			break
		}
	}
	return a
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.set.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limit applies the per-address limit and, if key is not "", the limiter
// l for key. It answers 429 itself and reports false when over a limit.
func (s *Service) limit(w http.ResponseWriter, r *http.Request, l *limiter, key string) bool {
	ok, wait := s.ip.allow(ipKey(s.clientIP(r)))
	if ok && l != nil {
		ok, wait = l.allow(key)
	}
	if ok {
		return true
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSONError(w, http.StatusTooManyRequests, "too many requests; retry after the Retry-After header's seconds")
		return false
	}
	s.render(w, http.StatusTooManyRequests, "message", &page{
		Title: "Too many attempts",
		Text:  "There were too many attempts in a short time. Wait a minute, then try again.",
	})
	return false
}

// server is the running HTTP server of Start.
type server struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// TLSFiles names a PEM certificate and key. The files are read again when
// they change (checked at most once a minute), so a renewed certificate is
// used without a restart.
type TLSFiles struct {
	CertFile, KeyFile string
}

// Start listens on addr (host:port) and serves the site, with TLS if tf is
// not nil, and starts the hourly sweep. It returns once it listens; Close
// stops it.
func (s *Service) Start(addr string, tf *TLSFiles) error {
	if s.srv != nil {
		return errors.New("enrollment: already started")
	}
	var tcfg *tls.Config
	if tf != nil {
		cr := &certReloader{certFile: tf.CertFile, keyFile: tf.KeyFile}
		if _, err := cr.load(); err != nil {
			return err
		}
		tcfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cr.get}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("enrollment.listen %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tcfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second, // a confirmation waits for its mail (smtp.timeout)
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug), // TLS handshake noise of scanners
	}
	s.srv = &server{http: hs, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.srv.done)
		var err error
		if tcfg != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("enrollment: site stopped", "err", err)
		}
	}()
	s.wg.Add(1)
	go s.sweeper(sweepEvery)
	scheme := "http"
	if tcfg != nil {
		scheme = "https"
	}
	s.log.Info("enrollment site serving", "enrollment", ln.Addr().String(), "scheme", scheme, "public_url", s.set.PublicURL,
		"self_service", s.set.SelfService, "api", s.set.APIToken != nil, "mail", s.mailer != nil)
	return nil
}

// Addr is the address the site listens on, "" before Start.
func (s *Service) Addr() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.ln.Addr().String()
}

func (sv *server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := sv.http.Shutdown(ctx)
	<-sv.done
	if err != nil {
		sv.http.Close()
		return fmt.Errorf("enrollment: shutdown: %w", err)
	}
	return nil
}

// certReloader serves a certificate from files and reloads it when they change.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (c *certReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("enrollment: TLS certificate %s / key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert = &cert
	c.modTime = c.stamp()
	c.checked = time.Now()
	return c.cert, nil
}

// stamp is the later modification time of the two files.
func (c *certReloader) stamp() time.Time {
	var t time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) > time.Minute {
		c.checked = time.Now()
		if c.stamp().After(c.modTime) {
			if _, err := c.load(); err != nil {
				// Keep serving the old certificate until the files are whole again.
				return c.cert, nil
			}
		}
	}
	return c.cert, nil
}
