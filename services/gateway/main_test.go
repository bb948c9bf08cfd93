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

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func TestUpstreams(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	// From scripts/services.conf (found above the working directory): every
	// service with a queue, in its order, on 127.0.0.1:<port>.
	ups, err := upstreamsFrom(env())
	if err != nil || len(ups) < 6 || ups[0].Dir != "customers" || ups[0].Name != "crm.customers" || ups[0].URL.String() != "http://127.0.0.1:8081" {
		t.Fatalf("from services.conf: %+v, %v", ups, err)
	}
	for _, u := range ups {
		if u.Dir == "gateway" {
			t.Errorf("the gateway is its own upstream: %+v", u)
		}
	}
	if ups, _ := upstreamsFrom(env("UPSTREAM_ORDERS", "http://10.0.0.1:9000")); ups[2].Dir != "orders" || ups[2].URL.String() != "http://10.0.0.1:9000" {
		t.Fatalf("override: %+v", ups[2])
	}
	ups, err = upstreamsFrom(env("UPSTREAMS", "a-b x.y http://h:1, c z.w https://h:2/"))
	if err != nil || len(ups) != 2 || ups[0].Dir != "a-b" || ups[1].Name != "z.w" || ups[1].URL.String() != "https://h:2/" {
		t.Fatalf("UPSTREAMS: %+v, %v", ups, err)
	}
	for _, bad := range [][]string{
		{"UPSTREAMS", "orders http://h:1"},
		{"UPSTREAMS", "orders sales.orders 127.0.0.1:8083"},
		{"UPSTREAM_CATALOG", "127.0.0.1:8082"},
		{"UPSTREAM_PAYMENTS", "ftp://x"},
		{"SERVICES_CONF", "/nonexistent/services.conf"},
	} {
		if _, err := upstreamsFrom(env(bad...)); err == nil {
			t.Errorf("%v: accepted", bad)
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
	iss := authtest.NewIssuer(t)
	env["OIDC_ISSUER"], env["OIDC_AUDIENCE"] = iss.URL, authtest.Audience
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
	// The manifests say registering a customer needs staff: anonymous is
	// refused at the gateway, a staff token goes through.
	res, err := http.Post("http://"+addr+"/customers/v1/customers", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("anonymous: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/customers/v1/customers", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+iss.Staff())
	res, err = http.DefaultClient.Do(req)
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
