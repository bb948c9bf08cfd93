package httpkit

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Check reports whether one dependency (database, broker) is usable.
// It must honour ctx's deadline.
type Check func(ctx context.Context) error

// Health returns the handler of GET /health. It runs every check
// concurrently with a 3-second timeout and answers 200 application/json
// {"status":"ok","checks":{"mysql":"ok",...}} when all pass, else a 503
// problem whose errors name each failing check (field = check name).
func Health(checks map[string]Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		var (
			mu      sync.Mutex
			wg      sync.WaitGroup
			results = map[string]string{}
			failed  problem.Fields
		)
		for name, check := range checks {
			wg.Go(func() {
				err := check(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					results[name] = "failing"
					failed.Add(name, err.Error())
				} else {
					results[name] = "ok"
				}
			})
		}
		wg.Wait()
		if len(failed) > 0 {
			sort.Slice(failed, func(i, j int) bool { return failed[i].Field < failed[j].Field })
			p := problem.New(http.StatusServiceUnavailable, "a dependency is unavailable")
			p.Errors = failed
			problem.Write(w, r, p)
			return
		}
		body, _ := json.Marshal(map[string]any{"status": "ok", "checks": results})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}

// MaxHeaderBytes bounds the request line and headers of a request: over
// it, Stack answers 431 problem+json (LimitHeaders). Beyond
// MaxHeaderBytesRead the server reads no further and net/http itself
// answers 431 (text/plain, with 4 KiB of slack) and closes the connection.
const (
	MaxHeaderBytes     = 16 << 10
	MaxHeaderBytesRead = 64 << 10
)

// NewServer returns an http.Server for h with the platform's bounds: the
// request line and headers within MaxHeaderBytesRead (else 431) and read within
// 10 s, the whole request within 30 s, the answer written within 60 s, an
// idle keep-alive connection closed after 120 s. A client sending slowly
// holds a connection at most that long; how many it may hold is bounded
// by LimitConns (the gateway's listener).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytesRead,
	}
}

// Serve serves srv on ln until ctx is done, then shuts down gracefully:
// it stops accepting, waits up to grace for in-flight requests, then closes
// what is left. It blocks until the server has stopped and returns nil after
// a shutdown caused by ctx, or the error that stopped the server otherwise
// (ln is closed in every case).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
