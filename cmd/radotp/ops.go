package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/radotp/radotp/config"
)

// Operations: reload on SIGHUP, health and readiness endpoints, build info
// and load gauges, online backup.

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// registerOps adds the operational collectors of m (always, so that Reload
// can count with the metrics listener off).
func (m *Main) registerOps() {
	vcs := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				vcs = s.Value
			}
		}
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "radotp_build_info", Help: "Always 1; the labels say which radotp runs.",
	}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(version, vcs, goVersion()).Set(1)
	m.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "radotp_config_reload_failures_total",
		Help: "SIGHUP reloads refused (the old configuration keeps serving).",
	})
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "radotp_config_reloads_total", Help: "SIGHUP reloads applied.",
	})
	gauge := func(name, help string, f func(inFlight, queued, cached int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			return float64(f(m.Server.Load()))
		})
	}
	m.Registry.MustRegister(info, m.reloadFailures, m.reloads,
		gauge("radotp_radius_in_flight", "Requests being decided now.", func(f, _, _ int) int { return f }),
		gauge("radotp_radius_queue_depth", "Requests waiting for a worker.", func(_, q, _ int) int { return q }),
		gauge("radotp_radius_reply_cache_entries", "Requests remembered for retransmissions.", func(_, _, c int) int { return c }),
	)
}

// handleOps adds /healthz and /readyz to the metrics listener's mux.
func (m *Main) handleOps(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	// Ready: the database takes writes and the key is loaded, so an Accept
	// can be committed. A load balancer or orchestrator should stop sending
	// requests to a node that is not.
	// The check takes the database's write lock for a moment: it runs at
	// most once a second, whoever asks how often, so that probes never
	// compete with logins for the lock.
	var mu sync.Mutex
	var checked time.Time
	var last error
	ready := func() error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) >= time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			last, checked = m.DB.Ready(ctx), time.Now()
			cancel()
		}
		return last
	}
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			m.Logger.Warn("readyz: not ready", "err", err)
			http.Error(w, "not ready: database not writable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

// Reload reads the configuration file again and applies, atomically, what
// can change while serving: clients (addresses, secrets, modes, policies,
// challenge settings), policy, trusted networks, lockout and TOTP checking
// settings. A file with any error is refused as a whole and the old
// configuration keeps serving. Keys that need a restart (listen addresses,
// database, workers, caches) are reported, not applied.
func (m *Main) Reload() error {
	cfg, err := config.Load(m.Config.Path)
	if err != nil {
		return m.reloadRefused(err)
	}
	clients, err := radiusClients(cfg, m.firstFactor) // backends are built at start; a new one needs a restart
	if err != nil {
		return m.reloadRefused(err)
	}
	restart := restartKeys(m.Config, cfg)
	m.Server.SetClients(clients)
	m.Verifier.SetSettings(verifierSettings(cfg))
	m.Config = cfg
	m.reloads.Inc()
	for _, w := range cfg.Warnings() {
		m.Logger.Warn("config: " + w)
	}
	if len(restart) > 0 {
		m.Logger.Warn("config reloaded, but these keys changed and need a restart of radotp", "keys", restart)
	}
	m.Logger.Info("config reloaded", "file", cfg.Path, "clients", len(cfg.Clients))
	return nil
}

func (m *Main) reloadRefused(err error) error {
	m.reloadFailures.Inc()
	m.Logger.Error("config reload refused; the previous configuration keeps serving", "file", m.Config.Path, "err", err)
	return err
}

// restartKeys lists the keys that differ between a and b and only take
// effect on a restart.
func restartKeys(a, b *config.Config) []string {
	var ks []string
	add := func(changed bool, k string) {
		if changed {
			ks = append(ks, k)
		}
	}
	add(a.Radius != b.Radius, "[radius]")
	add(a.Database != b.Database, "[database]")
	add(a.Metrics != b.Metrics, "metrics.listen")
	add(a.Log != b.Log, "[log]")
	add(a.Audit != b.Audit, "audit.retention")
	add(!reflect.DeepEqual(a.Enrollment, b.Enrollment), "[enrollment]")
	add(!reflect.DeepEqual(a.SMTP, b.SMTP), "[smtp]")
	add(firstFactorChanged(a, b), "[first_factor]")
	return slices.Clip(ks)
}

func (c *cli) backup(args []string) error {
	pos, err := parse(c.flags("backup"), args, 1, "a FILE to write the copy to")
	if err != nil {
		return err
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := db.Backup(context.Background(), pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "backup of %s written to %s in %s; keep %s (the key) apart from it: the copy is useless without it\n",
		cfg.Database.Path, pos[0], time.Since(start).Round(time.Millisecond), cfg.Database.KeyFile)
	return nil
}
