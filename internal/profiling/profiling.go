// Package profiling serves the Go runtime's profiles (net/http/pprof) on a
// listener of their own, for measuring a service under load (scripts/bench
// -pprof-base). Services start it only when PPROF_ADDR is set: it is off by
// default and never mounted on the API's port, so the gateway cannot expose it.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Handler returns the pprof endpoints under /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Server is a running profiling server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr (host:port; a loopback address, since profiles
// reveal memory contents) and serves Handler until Close. It returns an
// error when addr is not loopback or cannot be listened on.
func Start(addr string, logger *slog.Logger) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("profiling: PPROF_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("profiling: PPROF_ADDR %q: want a loopback address (127.0.0.1:port)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("profiling: %w", err)
	}
	// No WriteTimeout: /debug/pprof/profile?seconds=N streams for N seconds.
	s := &Server{srv: &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && logger != nil {
			logger.Warn("profiling server stopped", "error", err)
		}
	}()
	if logger != nil {
		logger.Info("profiling endpoints enabled", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, cutting a profile in progress after one second.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
