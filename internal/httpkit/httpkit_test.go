package httpkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

type line struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

type input struct {
	Email  string    `json:"email"`
	Age    int       `json:"age"`
	Tags   []string  `json:"tags"`
	Lines  []line    `json:"lines"`
	When   time.Time `json:"when"`
	Active *bool     `json:"active"`
}

func decode(ct, body string) (input, error) {
	req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	var in input
	err := httpkit.DecodeJSON(httptest.NewRecorder(), req, &in)
	return in, err
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, ct, body string
		wantStatus     int // 0: no error
		wantField      string
	}{
		{"ok", "application/json", `{"email":"a@b.c","age":3}`, 0, ""},
		{"ok charset", "application/json; charset=UTF-8", `{"email":"a@b.c"}`, 0, ""},
		{"ok merge patch", "application/merge-patch+json", `{"email":"a@b.c"}`, 0, ""},
		{"ok trailing space", "application/json", "{}\n\t ", 0, ""},
		{"ok null", "application/json", `null`, 0, ""},
		{"no content type", "", `{}`, 415, ""},
		{"text plain", "text/plain", `{}`, 415, ""},
		{"form", "application/x-www-form-urlencoded", `a=b`, 415, ""},
		{"bad media type", "application/", `{}`, 415, ""},
		{"latin1", "application/json; charset=latin1", `{}`, 415, ""},
		{"xml+json lookalike", "text/foo+json", `{}`, 415, ""},
		{"empty", "application/json", ``, 400, ""},
		{"whitespace only", "application/json", "  \n", 400, ""},
		{"syntax", "application/json", `{"email":}`, 400, ""},
		{"truncated", "application/json", `{"email":"x"`, 400, ""},
		{"two values", "application/json", `{}{}`, 400, ""},
		{"trailing garbage", "application/json", `{} x`, 400, ""},
		{"wrong type string", "application/json", `{"email":1}`, 422, "/email"},
		{"wrong type int", "application/json", `{"age":"x"}`, 422, "/age"},
		{"fraction for int", "application/json", `{"age":1.5}`, 422, "/age"},
		{"overflow", "application/json", `{"age":1e400}`, 422, "/age"},
		{"nested wrong type", "application/json", `{"lines":[{"quantity":"2"}]}`, 422, "/lines/quantity"},
		{"array for object", "application/json", `[]`, 422, ""},
		{"string for object", "application/json", `"x"`, 422, ""},
		{"unknown field", "application/json", `{"emial":"x"}`, 422, "/emial"},
		{"nested unknown", "application/json", `{"lines":[{"sku":"x"}]}`, 422, "/sku"},
		{"bad time", "application/json", `{"when":"yesterday"}`, 422, ""},
		{"too large", "application/json", `{"email":"` + strings.Repeat("a", httpkit.DefaultMaxBodyBytes) + `"}`, 413, ""},
		{"duplicate key", "application/json", `{"email":"x","email":"y"}`, 422, "/email"},
		{"duplicate nested key", "application/json", `{"lines":[{"quantity":1},{"quantity":2,"quantity":3}]}`, 422, "/lines/1/quantity"},
		{"same key in sibling objects", "application/json", `{"lines":[{"quantity":1},{"quantity":2}]}`, 0, ""},
		{"duplicate key with a slash", "application/json", `{"lines":[{"a/b":1,"a/b":2}]}`, 422, "/lines/0/a~1b"},
		{"NUL in a value", "application/json", `{"email":"a\u0000b"}`, 422, "/email"},
		{"NUL in a nested value", "application/json", `{"lines":[{"product_id":"\u0000"}]}`, 422, "/lines/0/product_id"},
		{"NUL in a key", "application/json", `{"e\u0000":"x"}`, 422, ""},
		{"invalid UTF-8", "application/json", "{\"email\":\"\xff\"}", 400, ""},
		{"escaped lone surrogate is valid JSON", "application/json", `{"email":"\ud800"}`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(tt.ct, tt.body)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			p := problem.From(err)
			if p == nil {
				t.Fatalf("error %v is not a problem", err)
			}
			if p.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%v)", p.Status, tt.wantStatus, p)
			}
			if tt.wantField != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField) {
				t.Fatalf("errors %+v, want field %s", p.Errors, tt.wantField)
			}
		})
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a","age":1,"lines":[{"product_id":"p","quantity":2}]}`, `[`, `{"when":"2020-01-01T00:00:00Z"}`, `{"active":true}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, err := decode("application/json", body)
		if err == nil {
			return
		}
		p := problem.From(err)
		if p == nil || p.Status < 400 || p.Status > 499 {
			t.Fatalf("body %q: error %v is not a 4xx problem", body, err)
		}
	})
}

func newRouter() *httpkit.Router {
	rt := httpkit.NewRouter()
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok "+r.PathValue("id")) }
	rt.HandleFunc("GET /v1/customers", ok)
	rt.HandleFunc("POST /v1/customers", ok)
	rt.HandleFunc("GET /v1/customers/{id}", ok)
	rt.HandleFunc("DELETE /v1/customers/{id}", ok)
	rt.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	return rt
}

func TestRouterNegotiatesJSON(t *testing.T) {
	srv := httptest.NewServer(httpkit.Stack(newRouter(), httpkit.Options{Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	tests := []struct {
		accept string
		want   int
	}{
		{"", 200},
		{"application/json", 200},
		{"application/hal+json", 200},
		{"application/problem+json", 200},
		{"*/*", 200},
		{"text/html, application/*;q=0.1", 200},
		{"text/html", 406},
		{"application/xml, text/plain", 406},
		{"application/json;q=0", 406},
		{"application/json;q=0.000, text/html", 406},
		{"not a media type", 200},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/v1/customers/1", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == 406 && res.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("406 as %q", res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestRouter(t *testing.T) {
	srv := httptest.NewServer(httpkit.Stack(newRouter(), httpkit.Options{Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	tests := []struct {
		method, path string
		wantStatus   int
		wantAllow    string
		wantBody     string
	}{
		{"GET", "/v1/customers", 200, "", "ok "},
		{"GET", "/v1/customers/42", 200, "", "ok 42"},
		{"HEAD", "/v1/customers/42", 200, "", ""},
		{"PUT", "/v1/customers", 405, "GET, HEAD, OPTIONS, POST", ""},
		{"PATCH", "/v1/customers/42", 405, "DELETE, GET, HEAD, OPTIONS", ""},
		{"OPTIONS", "/v1/customers/42", 204, "DELETE, GET, HEAD, OPTIONS", ""},
		{"GET", "/v1/customers/a%20b", 200, "", "ok a b"},
		{"GET", "/v1/customers/..%2F..%2Fcustomers%2Fv1", 200, "", "ok ../../customers/v1"},
		{"GET", "/v1/customers/../customers", 404, "", ""},
		{"GET", "/v1//customers", 404, "", ""},
		{"GET", "/v1/customers/%00", 404, "", ""},
		{"GET", "/v1/customers/%ff", 404, "", ""},
		{"GET", "/v1/customers?email=%ff", 400, "", ""},
		{"GET", "/v1/customers?email=a%00b", 400, "", ""},
		{"GET", "/v1/nothing", 404, "", ""},
		{"GET", "/v1/customers/42/orders", 404, "", ""},
		{"GET", "/", 404, "", ""},
		{"GET", "/panic", 500, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.wantStatus, body)
			}
			if got := res.Header.Get("Allow"); got != tt.wantAllow {
				t.Fatalf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if res.Header.Get(httpkit.HeaderRequestID) == "" {
				t.Fatal("no X-Request-Id in the response")
			}
			if tt.wantStatus >= 400 {
				if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
					t.Fatalf("content type %q for an error", ct)
				}
				var p problem.Problem
				if err := json.Unmarshal(body, &p); err != nil || p.Status != tt.wantStatus {
					t.Fatalf("problem body %s (%v)", body, err)
				}
			} else if tt.method != "HEAD" && string(body) != tt.wantBody {
				t.Fatalf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	type seen struct{ id, tp, hookID, hookTP string }
	var got seen
	type k int
	h := httpkit.RequestID(
		func(ctx context.Context, id string) context.Context { return context.WithValue(ctx, k(1), id) },
		func(ctx context.Context, tp string) context.Context { return context.WithValue(ctx, k(2), tp) },
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = seen{httpkit.RequestIDFrom(r.Context()), httpkit.TraceparentFrom(r.Context()),
			r.Context().Value(k(1)).(string), r.Context().Value(k(2)).(string)}
	}))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, id, tp   string
		keepID, keepTP bool
	}{
		{"kept", "abc-123", tp, true, true},
		{"absent", "", "", false, false},
		{"invalid id", "bad id\x00", "00-zz", false, false},
		{"too long", strings.Repeat("a", 129), "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tt.id != "" {
				req.Header.Set(httpkit.HeaderRequestID, tt.id)
			}
			if tt.tp != "" {
				req.Header.Set(httpkit.HeaderTraceparent, tt.tp)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if (got.id == tt.id) != tt.keepID || !httpkit.ValidRequestID(got.id) {
				t.Fatalf("request id %q (sent %q)", got.id, tt.id)
			}
			if (got.tp == tt.tp) != tt.keepTP || !httpkit.ValidTraceparent(got.tp) {
				t.Fatalf("traceparent %q (sent %q)", got.tp, tt.tp)
			}
			if got.hookID != got.id || got.hookTP != got.tp {
				t.Fatalf("hooks saw %+v", got)
			}
			if rec.Header().Get(httpkit.HeaderRequestID) != got.id {
				t.Fatal("response X-Request-Id differs")
			}
		})
	}
}

func TestLimitBody(t *testing.T) {
	h := httpkit.Stack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := httpkit.DecodeJSON(w, r, &v); err != nil {
			problem.Write(w, r, problem.From(err))
			return
		}
		w.WriteHeader(204)
	}), httpkit.Options{MaxBodyBytes: 16, Logger: slog.New(slog.DiscardHandler)})
	tests := []struct {
		name       string
		body       io.Reader
		wantStatus int
	}{
		{"small", strings.NewReader(`{"a":1}`), 204},
		{"declared too large", strings.NewReader(`{"a":"0123456789abcdef"}`), 413},
		{"chunked too large", io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("x", 100)+`"}`)), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", tt.body)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
		})
	}
}

func TestRecoverAndLog(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	h := httpkit.Stack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(errors.New("boom"))
	}), httpkit.Options{Logger: logger})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set(httpkit.HeaderRequestID, "rid-1")
	h.ServeHTTP(rec, req)
	if rec.Code != 500 || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("status %d", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "boom") {
		t.Fatal("panic value leaked to the client")
	}
	out := logs.String()
	if !strings.Contains(out, `"panic in handler"`) || !strings.Contains(out, `"status":500`) || !strings.Contains(out, `"request_id":"rid-1"`) {
		t.Fatalf("logs:\n%s", out)
	}
}

func TestIfMatch(t *testing.T) {
	tests := []struct {
		header  []string
		version int64
		present bool
		allows  bool
	}{
		{nil, 3, false, true},
		{[]string{`"3"`}, 3, true, true},
		{[]string{`"2"`}, 3, true, false},
		{[]string{`*`}, 3, true, true},
		{[]string{`"1", "3"`}, 3, true, true},
		{[]string{`"1"`, `"3"`}, 3, true, true},
		{[]string{`W/"3"`}, 3, true, false},
		{[]string{`3`}, 3, true, false},
		{[]string{``}, 3, true, false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("PATCH", "/", nil)
		for _, h := range tt.header {
			req.Header.Add("If-Match", h)
		}
		p := httpkit.IfMatch(req)
		if p.Present() != tt.present || p.Allows(tt.version) != tt.allows {
			t.Errorf("If-Match %q on version %d: present %v allows %v", tt.header, tt.version, p.Present(), p.Allows(tt.version))
		}
	}
	rec := httptest.NewRecorder()
	httpkit.SetETag(rec, 7)
	if rec.Header().Get("ETag") != `"7"` {
		t.Fatal(rec.Header().Get("ETag"))
	}
}

func TestHealth(t *testing.T) {
	ok := func(context.Context) error { return nil }
	bad := func(context.Context) error { return errors.New("connection refused") }
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name       string
		checks     map[string]httpkit.Check
		wantStatus int
	}{
		{"all ok", map[string]httpkit.Check{"mysql": ok, "rabbitmq": ok}, 200},
		{"none", nil, 200},
		{"one failing", map[string]httpkit.Check{"mysql": ok, "rabbitmq": bad}, 503},
	}
	if !testing.Short() {
		tests = append(tests, struct {
			name       string
			checks     map[string]httpkit.Check
			wantStatus int
		}{"timeout", map[string]httpkit.Check{"mysql": slow}, 503})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpkit.Health(tt.checks).ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if tt.wantStatus == 503 {
				var p problem.Problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Errors) != 1 {
					t.Fatalf("body %s", rec.Body)
				}
			}
		})
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := httpkit.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- httpkit.Serve(ctx, srv, ln, 5*time.Second) }()

	resc := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			resc <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		resc <- string(b)
	}()
	<-started
	cancel()
	if got := <-resc; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Fatal("server still accepting after shutdown")
	}
}
