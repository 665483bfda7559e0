package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/enrollment"
	"github.com/radotp/radotp/metrics"
	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/radius"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// Main is a running radotp server: the wiring of every package. End-to-end
// tests use it directly (Run on free ports, Close).
type Main struct {
	Config *config.Config
	Logger *slog.Logger
	Now    func() time.Time // nil = time.Now

	DB       *store.DB
	Verifier *verifier.Verifier
	Server   *radius.Server
	Registry *prometheus.Registry

	// Enrollment makes enrollment links and serves the site (enroll.go);
	// its NotEnrolledHook is for the verifier.
	Enrollment *enrollment.Service

	conn      net.PacketConn
	metricsLn net.Listener
	httpSrv   *http.Server
	served    chan error

	stopBackground context.CancelFunc // audit pruning

	firstFactor      verifier.FirstFactor // backends from firstFactorFromConfig
	closeFirstFactor func() error

	reloads, reloadFailures prometheus.Counter
}

// Run opens the database, binds the RADIUS and metrics listeners and starts
// serving. It returns once both listen, or with the first error.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()

	m.DB, err = store.Open(ctx, store.Options{Path: cfg.Database.Path, KeyFile: cfg.Database.KeyFile, Now: m.Now})
	if err != nil {
		return err
	}
	hasher := password.NewHasher(runtime.NumCPU())
	m.firstFactor, m.closeFirstFactor, err = firstFactorFromConfig(cfg, verifier.Local(hasher, m.Logger), m.Logger)
	if err != nil {
		return err
	}
	clients, err := radiusClients(cfg, m.firstFactor)
	if err != nil {
		return err
	}

	m.Registry = prometheus.NewRegistry()
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met := metrics.New(m.Registry, radius.DropReasons, radius.AnswerKinds)
	metrics.RegisterTokens(m.Registry, m.DB.TokenCounts)
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "radotp_audit_dropped_total",
		Help: "Audit entries not stored because the audit queue was full or the write failed.",
	}, func() float64 { _, d := m.DB.AuditStats(); return float64(d) }))
	if err := m.startEnrollment(); err != nil { // enroll.go; before the verifier, which gets its hook
		return err
	}

	m.Verifier = verifier.New(verifier.Options{
		Store:        m.DB,
		Passwords:    hasher,
		Now:          m.Now,
		Logger:       m.Logger,
		ChallengeKey: m.DB.ChallengeKey(),

		Backend:         m.firstFactor,
		AutoCreateUsers: cfg.FirstFactor.AutoCreate(),
		NotEnrolled:     m.Enrollment.NotEnrolledHook(), // mails a link (enrollment.mail_link_when_not_enrolled)
	}, verifierSettings(cfg))
	m.Server = &radius.Server{
		Verifier:       met.Instrument(auditing{next: m.Verifier, db: m.DB}),
		Observer:       met,
		Logger:         m.Logger,
		Workers:        cfg.Radius.Workers,
		QueueSize:      cfg.Radius.QueueSize,
		ReplyCacheTTL:  cfg.Radius.ReplyCacheTTL.Duration,
		ReplyCacheSize: cfg.Radius.ReplyCacheSize,
		Now:            m.Now,
	}
	m.Server.SetClients(clients)
	m.registerOps()

	m.conn, err = net.ListenPacket("udp", cfg.Radius.Listen)
	if err != nil {
		return fmt.Errorf("radius.listen %s: %w", cfg.Radius.Listen, err)
	}
	if err := setReceiveBuffer(m.conn, cfg.Radius.ReceiveBuffer, m.Logger); err != nil {
		m.conn.Close()
		return err
	}
	if cfg.Metrics.Listen != "" {
		m.metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(m.Registry))
		m.handleOps(mux)
		m.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
		go func() { _ = m.httpSrv.Serve(m.metricsLn) }()
	}
	var bg context.Context
	bg, m.stopBackground = context.WithCancel(context.Background())
	go pruneAudit(bg, m, cfg.Audit.Retention.Duration)
	m.served = make(chan error, 1)
	go func() { m.served <- m.Server.Serve(m.conn) }()

	m.Logger.Info("radotp serving", "radius", m.conn.LocalAddr().String(), "metrics", m.MetricsAddr(),
		"database", cfg.Database.Path, "clients", len(cfg.Clients))
	return nil
}

// RadiusAddr is the bound RADIUS address (useful with port 0).
func (m *Main) RadiusAddr() string { return m.conn.LocalAddr().String() }

// MetricsAddr is the bound metrics address, or "" when disabled.
func (m *Main) MetricsAddr() string {
	if m.metricsLn == nil {
		return ""
	}
	return m.metricsLn.Addr().String()
}

// Served is closed-over Serve's return: it yields once the RADIUS server stops.
func (m *Main) Served() <-chan error { return m.served }

// Close stops reading requests, lets those in flight finish and answer (up to
// 10 s), then stops the metrics listener and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.stopBackground != nil {
		m.stopBackground()
	}
	if m.Server != nil && m.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.Server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("radius shutdown: %w", err))
		}
		cancel()
	}
	if m.conn != nil {
		m.conn.Close()
	}
	if m.httpSrv != nil {
		m.httpSrv.Close()
	}
	errs = append(errs, m.closeEnrollment()) // enroll.go; before the first factor and the database it uses
	if m.closeFirstFactor != nil {
		errs = append(errs, m.closeFirstFactor()) // after Shutdown: no check in flight
	}
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func verifierSettings(cfg *config.Config) verifier.Settings {
	return verifier.Settings{
		Skew:            cfg.TOTP.Skew,
		DefaultPolicy:   verifier.Policy(cfg.Policy.Default),
		MaxFailures:     cfg.Lockout.MaxFailures,
		LockoutDuration: cfg.Lockout.Duration.Duration,
		TrustedNetworks: cfg.Policy.TrustedPrefixes,
		// A retransmission after a restart is answered as the reply cache
		// would have answered it, for as long as the cache would keep it.
		RetransmitWindow: cfg.Radius.ReplyCacheTTL.Duration,
	}
}

// radiusClients builds the clients of cfg; firstFactor is the set of
// first-factor backends (firstFactorFromConfig) a client's first_factor picks from.
func radiusClients(cfg *config.Config, firstFactor verifier.FirstFactor) (*radius.Clients, error) {
	cs := make([]radius.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		ff, err := clientFirstFactor(firstFactor, c.Name, c.FirstFactor)
		if err != nil {
			return nil, err
		}
		cs = append(cs, radius.Client{
			Client: verifier.Client{
				Name: c.Name, Mode: verifier.Mode(c.Mode), Separator: c.Separator, Policy: verifier.Policy(c.Policy),
				ChallengePrompt: c.ChallengePrompt, ChallengeTTL: c.ChallengeTTL.Duration,
				FirstFactor: ff,
			},
			Prefixes:                    []netip.Prefix{c.Prefix},
			Secret:                      c.SecretBytes,
			RequireMessageAuthenticator: c.RequiresMessageAuthenticator(),
		})
	}
	return radius.NewClients(cs)
}

// newLogger builds the process logger from [log].
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// setReceiveBuffer applies radius.receive_buffer (0: the system's default)
// and logs the size the socket has, as the kernel counts it (kernel_bytes:
// twice the setting, the doubling being Linux's room for its bookkeeping). A
// size the kernel capped is a warning that says how to lift the cap, not an
// error: radotp still serves.
func setReceiveBuffer(conn net.PacketConn, n int, log *slog.Logger) error {
	if n == 0 {
		log.Info("radius: socket receive buffer", "radius.receive_buffer", "0 (the system's default)", "kernel_bytes", radius.ReceiveBuffer(conn))
		return nil
	}
	got, err := radius.SetReceiveBuffer(conn, n)
	if err != nil {
		return fmt.Errorf("radius.receive_buffer %d: %w", n, err)
	}
	if got < 2*n { // the kernel caps the setting at rmem_max, then doubles it
		log.Warn("radius.receive_buffer: the kernel capped the socket's receive buffer at net.core.rmem_max",
			"radius.receive_buffer", n, "kernel_bytes", got, "want_kernel_bytes", 2*n,
			"fix", fmt.Sprintf("sysctl -w net.core.rmem_max=%d (and in /etc/sysctl.d to keep it), or give radotp CAP_NET_ADMIN", n))
		return nil
	}
	log.Info("radius: socket receive buffer", "radius.receive_buffer", n, "kernel_bytes", got)
	return nil
}
