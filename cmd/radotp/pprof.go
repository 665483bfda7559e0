package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"time"
)

// pprofEnv names the environment variable that turns on Go's profiler
// endpoints (/debug/pprof/...) on a loopback address, for performance work:
//
//	RADOTP_PPROF=127.0.0.1:6060 radotp serve --config radotp.toml
//	go tool pprof 'http://127.0.0.1:6060/debug/pprof/profile?seconds=20'
//
// It is off unless set, is refused on a non-loopback address (profiles show
// memory contents such as user names), and also turns on block and mutex
// profiling at a low rate.
const pprofEnv = "RADOTP_PPROF"

func init() {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return
	}
	if err := startPprof(addr); err != nil {
		fmt.Fprintf(os.Stderr, "radotp: %s=%s: %v\n", pprofEnv, addr, err)
		os.Exit(1)
	}
}

func startPprof(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("want a loopback address such as 127.0.0.1:6060")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	runtime.SetBlockProfileRate(int(100 * time.Microsecond)) // one sample per 100 µs blocked
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return nil
}
