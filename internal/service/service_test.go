package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

var spec = service.Spec{Dir: "widgets", Name: "test.widgets", Addr: "127.0.0.1:8099"}

// TestConfig is the one configuration test of every service: defaults, and
// each invalid setting reported with its variable's name.
func TestConfig(t *testing.T) {
	good := map[string]string{"AMQP_URL": "amqp://u:p@127.0.0.1:5672/v", "MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/db"}
	c := service.ConfigFrom(env(good), spec)
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if c.HTTPAddr != "127.0.0.1:8099" || c.PublicBaseURL != "http://127.0.0.1:8080" || c.QueueType != eventbus.QueueClassic ||
		c.ShutdownGrace != 10*time.Second || c.OpenTimeout != 60*time.Second || c.PprofAddr != "" || c.PrintContracts {
		t.Errorf("defaults: %+v", c)
	}
	set := map[string]string{"HTTP_ADDR": "0.0.0.0:1", "PUBLIC_BASE_URL": "https://shop.example", "QUEUE_TYPE": "quorum",
		"PPROF_ADDR": "127.0.0.1:6060", "SHUTDOWN_GRACE": "3s", "MYSQL_OPEN_TIMEOUT": "2m"}
	for k, v := range good {
		set[k] = v
	}
	c = service.ConfigFrom(env(set), spec)
	if err := c.Validate(); err != nil || c.HTTPAddr != "0.0.0.0:1" || c.QueueType != eventbus.QueueQuorum ||
		c.ShutdownGrace != 3*time.Second || c.OpenTimeout != 2*time.Minute || c.PprofAddr != "127.0.0.1:6060" {
		t.Errorf("set: %+v, %v", c, err)
	}
	for _, tt := range []struct{ key, value string }{
		{"AMQP_URL", ""},
		{"MYSQL_DSN", ""},
		{"MYSQL_DSN", "nonsense"},
		{"HTTP_ADDR", "8083"},
		{"PUBLIC_BASE_URL", "/orders"},
		{"QUEUE_TYPE", "stream"},
		{"SHUTDOWN_GRACE", "soon"},
		{"MYSQL_OPEN_TIMEOUT", "-1s"},
	} {
		kv := map[string]string{}
		for k, v := range good {
			kv[k] = v
		}
		kv[tt.key] = tt.value
		err := service.ConfigFrom(env(kv), spec).Validate()
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s=%q: %v, want an error naming %s", tt.key, tt.value, err, tt.key)
		}
	}
	// Without a bus (the gateway), and when printing contracts, the broker
	// and the database are not required.
	if err := service.ConfigFrom(env(nil), service.Spec{Dir: "gateway", Addr: "127.0.0.1:8080"}).Validate(); err != nil {
		t.Errorf("gateway: %v", err)
	}
	if err := service.ConfigFrom(env(map[string]string{"SAGITTARIUS_PRINT_CONTRACTS": "1"}), spec).Validate(); err != nil {
		t.Errorf("printing contracts: %v", err)
	}
}

// TestGroup: the first actor to return interrupts the others; Run waits for
// all and returns the errors, a clean stop being nil.
func TestGroup(t *testing.T) {
	var g service.Group
	stopped := make(chan string, 3)
	for _, name := range []string{"a", "b"} {
		g.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			stopped <- name
			return ctx.Err() // context.Canceled: a clean stop
		})
	}
	boom := errors.New("boom")
	g.Add("failing", func() error { return boom }, func(error) { stopped <- "failing" })
	var first string
	err := g.Run(func(name string, _ error) { first = name })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing: boom") || first != "failing" {
		t.Fatalf("Run: %v (first %q)", err, first)
	}
	if len(stopped) != 3 {
		t.Fatalf("%d actors interrupted, want 3", len(stopped))
	}

	var clean service.Group
	ctx, cancel := context.WithCancel(context.Background())
	clean.Go("signal", func(context.Context) error { <-ctx.Done(); return nil })
	clean.Go("worker", func(ctx context.Context) error { <-ctx.Done(); return nil })
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := clean.Run(nil); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	var empty service.Group
	if err := empty.Run(nil); err != nil {
		t.Fatal(err)
	}
}

// widgets is a one-route API for the tests.
type widgets struct{}

type widget struct {
	ID    string    `json:"id"`
	Links hal.Links `json:"_links"`
}

var widgetAdded = eventbus.MustEventType[widget]("test.widgets", "widget_added", "widget")

func (widgets) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "widgets", Name: "test.widgets", Title: "Widgets", Events: events, Routes: []contracts.Route{
		{Method: "GET", Path: "/v1/widgets/{id}", ID: "getWidget", Summary: "One widget", Params: contracts.IDParam{},
			Auth: auth.AnyOf(auth.RoleStaff),
			Handler: func(w http.ResponseWriter, r *http.Request) {
				p, _ := auth.FromContext(r.Context())
				hal.Write(w, r, http.StatusOK, widget{ID: r.PathValue("id") + "/" + p.Subject, Links: hal.Links{"self": hal.To("/v1/widgets/" + r.PathValue("id"))}})
			},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: widget{}}}},
		{Method: "GET", Path: "/v1", ID: "getRoot", Summary: "Root", Auth: auth.Anyone(),
			Handler:   func(w http.ResponseWriter, r *http.Request) { hal.Write(w, r, http.StatusOK, widget{ID: "root"}) },
			Responses: []contracts.Response{{Status: http.StatusOK, Body: widget{}}}},
	}}
}

// undeclared is widgets with a route that declares no requirement.
type undeclared struct{ widgets }

func (u undeclared) Contract(events contracts.Events) contracts.Service {
	s := u.widgets.Contract(events)
	s.Routes[0].Auth = nil
	return s
}

// TestPrintContracts: with SAGITTARIUS_PRINT_CONTRACTS=1 the service's
// manifests go to stdout and nothing connects (the broker and database URLs
// point nowhere), and the wiring's background actors do not run.
func TestPrintContracts(t *testing.T) {
	var out strings.Builder
	s := spec
	s.Publishes = []eventbus.EventInfoer{widgetAdded}
	err := service.Run(context.Background(), env(map[string]string{"SAGITTARIUS_PRINT_CONTRACTS": "1"}), &out, s,
		func(p *service.Process) (service.API, error) {
			if p.DB == nil || p.Bus == nil || p.Relay == nil {
				t.Error("the wiring got no database, bus or relay")
			}
			p.Go("never", func(context.Context) error { t.Error("an actor ran while printing contracts"); return nil })
			return widgets{}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var printed service.Printed
	if err := json.Unmarshal([]byte(out.String()), &printed); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if printed.Dir != "widgets" || printed.Name != "test.widgets" ||
		!strings.Contains(string(printed.OpenAPI), `"getWidget"`) || !strings.Contains(string(printed.AsyncAPI), "widget_added") {
		t.Fatalf("printed %s", out.String())
	}

	if !strings.Contains(string(printed.OpenAPI), `"x-roles"`) || !strings.Contains(string(printed.OpenAPI), `"openIdConnectUrl"`) {
		t.Errorf("the manifest declares no security: %s", printed.OpenAPI)
	}

	// A route without a declared requirement is refused.
	err = service.Run(context.Background(), env(map[string]string{"SAGITTARIUS_PRINT_CONTRACTS": "1"}), &out, spec,
		func(*service.Process) (service.API, error) { return undeclared{}, nil })
	if err == nil || !strings.Contains(err.Error(), "declares no access requirement") {
		t.Errorf("a route without requirement: %v", err)
	}

	// A contract that is not the spec's service is refused.
	err = service.Run(context.Background(), env(map[string]string{"SAGITTARIUS_PRINT_CONTRACTS": "1"}), &out,
		service.Spec{Dir: "gadgets", Name: "test.gadgets", Addr: "127.0.0.1:1"},
		func(*service.Process) (service.API, error) { return widgets{}, nil })
	if err == nil {
		t.Error("a contract of another service was accepted")
	}
}

// TestRun runs a service on the real broker and database: migrations
// applied, /health answering for both, the route table and the contract
// routes served with the middleware, the service's own actor running, and a
// graceful stop through ctx.
func TestRun(t *testing.T) {
	amqpURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	dsn := testinfra.NewDatabaseDSN(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"HTTP_ADDR": addr, "AMQP_URL": amqpURL, "MYSQL_DSN": dsn, "PUBLIC_BASE_URL": "http://gw.test"}
	// Without an issuer, the service refuses to start.
	if err := service.Run(context.Background(), env(vars), &strings.Builder{}, spec,
		func(*service.Process) (service.API, error) { return widgets{}, nil }); err == nil || !strings.Contains(err.Error(), "OIDC_ISSUER") {
		t.Fatalf("without OIDC_ISSUER: %v", err)
	}
	iss := authtest.NewIssuer(t)
	vars["OIDC_ISSUER"], vars["OIDC_AUDIENCE"] = iss.URL, authtest.Audience
	s := spec
	s.Publishes = []eventbus.EventInfoer{widgetAdded}
	s.Migrations = fstest.MapFS{"00001_widgets.sql": {Data: []byte("-- +goose Up\nCREATE TABLE widgets (id VARCHAR(64) PRIMARY KEY);\n-- +goose Down\nDROP TABLE widgets;\n")}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testinfra.SyncBuffer{}
	actor := make(chan struct{})
	done := make(chan error, 1)
	var tables int
	go func() {
		done <- service.Run(ctx, env(vars), logs, s, func(p *service.Process) (service.API, error) {
			if err := p.DB.GetContext(ctx, &tables, `SELECT COUNT(*) FROM information_schema.tables
				WHERE table_schema = DATABASE() AND table_name IN ('widgets', 'eventbus_outbox', 'eventbus_inbox')`); err != nil {
				return nil, err
			}
			p.Go("mine", func(ctx context.Context) error { close(actor); <-ctx.Done(); return nil })
			p.HandlePrefix("/oauth/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
			return widgets{}, nil
		})
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tables != 3 {
		t.Errorf("%d of the 3 tables (migration, outbox, inbox) exist", tables)
	}
	<-actor
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/widgets/w1", iss.Staff(), 200},
		{"/v1/widgets/w1", "", 401},
		{"/v1/widgets/w1", "not.a.token", 401},
		{"/v1/widgets/w1", iss.Customer("c1"), 403},
		{"/v1", "", 200},
		{"/v1", "not.a.token", 401},
		{"/v1/contracts/openapi", "", 200},
		{"/v1/contracts/asyncapi", "", 200},
		{"/v1/nothing", iss.Staff(), 404},
		{"/oauth/anything", "", http.StatusTeapot},
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s (token %v): %d (X-Request-Id %q), want %d: %s", tc.path, tc.token != "", resp.StatusCode, resp.Header.Get("X-Request-Id"), tc.want, body)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("GET %s: 401 without a challenge", tc.path)
		}
		if tc.want == 200 && strings.HasPrefix(tc.path, "/v1/widgets") && !strings.Contains(string(body), "w1/staff-1") {
			t.Errorf("the handler did not get the principal: %s", body)
		}
	}
	if resp, err := http.Get("http://" + addr + service.LivePath); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET %s: %v %v", service.LivePath, resp, err)
	} else {
		resp.Body.Close()
	}
	if q := testinfra.Queue(t, vhost, "test.widgets"); !q.Durable {
		t.Errorf("queue %+v", q)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop logged:\n%s", logs.String())
	}
}
