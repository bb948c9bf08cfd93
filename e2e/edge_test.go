package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// startStrictGateway starts one more gateway instance (beside the cluster's,
// which keeps its generous limits) with the edge settings env.
func startStrictGateway(t *testing.T, c *Cluster, env ...string) *platform.Instance {
	t.Helper()
	gw := c.p.Service("gateway")
	saved := gw.Env()
	gw.SetEnv(append(append([]string(nil), saved...), env...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, err := gw.StartExtra(ctx)
	gw.SetEnv(saved...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Kill() })
	return in
}

// testEdge: a flood of reads from one address through a gateway allowing
// 5 reads a second gets 429 problem+json with Retry-After and the RateLimit
// headers, changes nothing, and is served again after the advertised wait;
// oversized headers get 431 (and with a body of any size no 5xx); a client
// holding connections open is bounded.
func testEdge(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	in := startStrictGateway(t, c, "RATE_LIMIT_READS=5/s", "RATE_LIMIT_WRITES=2/s", "MAX_CONNS_PER_CLIENT=4")
	base := in.URL()
	item := base + "/customers/v1/customers/" + cu.ID

	var refused response
	served := 0
	for i := 0; i < 50; i++ {
		r := raw(t, "GET", item, "", nil)
		if r.Status == http.StatusTooManyRequests {
			refused = r
			break
		}
		if r.Status != http.StatusOK {
			t.Fatalf("read %d: %d %s", i+1, r.Status, r.Body)
		}
		if r.Header.Get("RateLimit-Policy") != `"reads";q=5;w=1` || !strings.HasPrefix(r.Header.Get("RateLimit"), `"reads";r=`) {
			t.Fatalf("an allowed read lacks the RateLimit headers: %v", r.Header)
		}
		served++
	}
	if refused.Status != http.StatusTooManyRequests {
		t.Fatalf("50 reads in a row from one address were all served")
	}
	if served < 4 || served > 5 { // the burst of 5, less the health check that started the instance
		t.Fatalf("%d reads served before the 429, want the burst of 5 (4 after the start-up health check)", served)
	}
	retry, err := strconv.Atoi(refused.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 1 {
		t.Fatalf("429 Retry-After %q, want 1", refused.Header.Get("Retry-After"))
	}
	if refused.Header.Get("RateLimit") != `"reads";r=0;t=1` || refused.Header.Get("RateLimit-Policy") != `"reads";q=5;w=1` {
		t.Fatalf("429 headers: %v", refused.Header)
	}
	var p problem.Problem
	refused.decode(t, &p)
	if refused.Header.Get("Content-Type") != "application/problem+json" || p.Status != 429 {
		t.Fatalf("429 body: %s %q", refused.Header.Get("Content-Type"), refused.Body)
	}
	// A flood of writes is refused before it reaches the service: nothing changes.
	writes := 0
	for i := 0; i < 10; i++ {
		r := raw(t, "PATCH", item, `{"name":"Flooded"}`, map[string]string{"Content-Type": "application/json", "If-Match": `"0"`})
		if r.Status == http.StatusTooManyRequests {
			break
		}
		writes++
	}
	if writes > 2 {
		t.Fatalf("%d writes passed a limit of 2/s", writes)
	}
	time.Sleep(time.Duration(retry) * time.Second)
	if r := raw(t, "GET", item, "", nil); r.Status != http.StatusOK {
		t.Fatalf("after Retry-After: %d %s", r.Status, r.Body)
	}
	// The cluster's own gateway, with the default limits, serves the same
	// address meanwhile: buckets are per instance.
	if r := raw(t, "GET", c.Gateway+"/customers/v1/customers/"+cu.ID, "", nil); r.Status != http.StatusOK || r.Header.Get("RateLimit-Policy") != `"reads";q=1000;w=1` {
		t.Fatalf("the cluster's gateway: %d %v", r.Status, r.Header)
	}

	// Oversized headers: 431 problem+json, not a 5xx.
	r := raw(t, "GET", c.Gateway+"/orders/v1", "", map[string]string{"X-Padding": strings.Repeat("x", 24<<10)})
	if r.Status != http.StatusRequestHeaderFieldsTooLarge || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("24 KiB of headers: %d %s, want 431 problem+json", r.Status, r.Header.Get("Content-Type"))
	}

	// A client holding 4 connections open (sending nothing) gets no fifth.
	addr := strings.TrimPrefix(base, "http://")
	for range 4 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\n")
	}
	// Connections of earlier requests may still be closing: retry briefly.
	eventually(t, 10*time.Second, "a fifth connection refused with 503", func() (bool, string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable, res.Status
	})
}
