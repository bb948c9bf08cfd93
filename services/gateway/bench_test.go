package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/gateway/edge"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

// BenchmarkItemRead is one item read through the gateway's whole pipeline
// (middleware, edge with rate limits on, reverse proxy) over loopback to an
// upstream answering a 1.5 KB HAL document: what to profile
// (go test -run X -bench ItemRead -cpuprofile cpu.out ./services/gateway/).
func BenchmarkItemRead(b *testing.B) {
	body := `{"id":"1","_links":{"self":{"href":"http://127.0.0.1:8080/orders/v1/orders/1"}},"pad":"` + strings.Repeat("x", 1400) + `"}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/hal+json")
		w.Header().Set("ETag", `"3"`)
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		_, _ = io.WriteString(w, body)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	base, _ := hal.NewBase("http://127.0.0.1:8080")
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	gw, err := proxy.New(proxy.Config{Base: base, Logger: logger, Upstreams: []proxy.Upstream{{Dir: "orders", Name: "sales.orders", URL: u}}})
	if err != nil {
		b.Fatal(err)
	}
	front, err := edge.New(edge.ConfigFrom(func(k string) string {
		if strings.HasPrefix(k, "RATE_LIMIT_") && k != "RATE_LIMIT_BACKOFF" && k != "RATE_LIMIT_SIGNIN_ROUTES" {
			return "100000000/s"
		}
		return ""
	}), nil)
	if err != nil {
		b.Fatal(err)
	}
	stdout, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer stdout.Close()
	realLogger := slog.New(slog.NewJSONHandler(stdout, nil))
	for _, v := range []struct {
		name string
		h    http.Handler
	}{
		{"proxy", gw},
		{"edge+proxy", front.Wrap(gw)},
		{"stack+proxy", httpkit.Stack(gw, httpkit.Options{Logger: realLogger})},
		{"gateway", httpkit.Stack(front.Wrap(gw), httpkit.Options{Logger: realLogger})},
	} {
		b.Run(v.name, func(b *testing.B) { benchServe(b, v.h) })
	}
}

// benchServe serves h on loopback and reads through it from parallel
// clients, reporting the CPU time of the whole process per read (client,
// server and upstream: compare the variants, not the absolute figure).
func benchServe(b *testing.B, h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := httpkit.NewServer(h)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	target := "http://" + ln.Addr().String() + "/orders/v1/orders/1"
	b.ReportAllocs()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	defer func() {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", target, nil)
		req.Header.Set("Accept", "application/hal+json")
		for pb.Next() {
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
