package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func TestConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c := configFrom(env())
	if err := c.Validate(); err != nil || c.HTTPAddr != "127.0.0.1:8080" || c.Upstreams["shipping"] != "http://127.0.0.1:8086" || len(c.Upstreams) != 6 {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if c := configFrom(env("UPSTREAM_ORDERS", "http://10.0.0.1:9000")); c.Upstreams["orders"] != "http://10.0.0.1:9000" {
		t.Fatalf("override: %v", c.Upstreams)
	}
	for _, bad := range [][]string{
		{"HTTP_ADDR", "8080"},
		{"PUBLIC_BASE_URL", "localhost:8080"},
		{"UPSTREAM_CATALOG", "127.0.0.1:8082"},
		{"UPSTREAM_PAYMENTS", "ftp://x"},
	} {
		if err := configFrom(env(bad...)).Validate(); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: error %v", bad, err)
		}
	}
}

func TestRun(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+r.Host+"/v1/customers/1")
		w.WriteHeader(http.StatusCreated)
	}))
	defer up.Close()
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "PUBLIC_BASE_URL": "http://gw.test", "UPSTREAM_CUSTOMERS": up.URL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testinfra.SyncBuffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, func(k string) string { return env[k] }, out) }()

	var addr string
	// Generous: under -race on a loaded CI machine, loading the portal
	// (YAML manifests) takes seconds.
	for deadline := time.Now().Add(60 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr = l.Addr
			}
		}
	}
	if addr == "" {
		t.Fatalf("not listening:\n%s", out)
	}
	res, err := http.Post("http://"+addr+"/customers/v1/customers", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || res.Header.Get("Location") != "http://gw.test/customers/v1/customers/1" || res.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}
