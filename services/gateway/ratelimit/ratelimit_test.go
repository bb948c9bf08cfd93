package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustClass(t *testing.T, name, v string) Class {
	t.Helper()
	c, err := ParseClass(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestLimiter(t *testing.T, clk *clock, cfg Config) http.Handler {
	t.Helper()
	if cfg.Classes == nil {
		routes, _ := ParseRoutes(DefaultSignInRoutes)
		cfg.Classes = &Classes{
			Reads:        mustClass(t, ClassReads, "5/s"),
			Writes:       mustClass(t, ClassWrites, "2/s burst 3"),
			SignIn:       mustClass(t, ClassSignIn, "100/m"),
			SignInRoutes: routes,
		}
	}
	cfg.Now = clk.Now
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity/login" {
			_ = r.ParseForm()
			if r.PostForm.Get("password") != "right" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
}

func do(h http.Handler, method, path, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestFloodIsRefusedThenRecovers: the sixth read in a second from one
// client is refused with 429, the headers and a problem; another client is
// not affected; after the advertised wait the client is served again.
func TestFloodIsRefusedThenRecovers(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newTestLimiter(t, clk, Config{})
	for i := range 5 {
		w := do(h, "GET", "/orders/v1/orders/1", "192.0.2.1:1000")
		if w.Code != 200 {
			t.Fatalf("read %d: %d", i+1, w.Code)
		}
		if got, want := w.Header().Get("RateLimit-Policy"), `"reads";q=5;w=1`; got != want {
			t.Fatalf("RateLimit-Policy %q, want %q", got, want)
		}
		if got, want := w.Header().Get("RateLimit"), fmt.Sprintf(`"reads";r=%d;t=1`, 4-i); got != want {
			t.Fatalf("read %d: RateLimit %q, want %q", i+1, got, want)
		}
	}
	w := do(h, "GET", "/orders/v1/orders/1", "192.0.2.1:1001")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("sixth read: %d, want 429", w.Code)
	}
	if w.Header().Get("Retry-After") != "1" || w.Header().Get("RateLimit") != `"reads";r=0;t=1` || w.Header().Get("RateLimit-Policy") == "" {
		t.Fatalf("429 headers: %v", w.Header())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("429 Content-Type %q", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != 429 || p.Detail == "" {
		t.Fatalf("429 body %q (%v)", w.Body, err)
	}
	if w := do(h, "GET", "/orders/v1/orders/1", "192.0.2.2:1000"); w.Code != 200 {
		t.Fatalf("another client: %d", w.Code)
	}
	// Writes are another class with a bucket of their own.
	if w := do(h, "POST", "/orders/v1/orders", "192.0.2.1:1000"); w.Code != 200 || w.Header().Get("RateLimit-Policy") != `"writes";q=2;w=1` {
		t.Fatalf("write: %d %v", w.Code, w.Header())
	}
	clk.Add(time.Second)
	if w := do(h, "GET", "/orders/v1/orders/1", "192.0.2.1:1000"); w.Code != 200 {
		t.Fatalf("after Retry-After: %d", w.Code)
	}
}

func TestBurstAndResetSeconds(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newTestLimiter(t, clk, Config{})
	// writes: 2/s burst 3; after one write, 2 left and the bucket is full
	// again in 0.5 s: t=1.
	w := do(h, "DELETE", "/orders/v1/orders/1", "192.0.2.1:1")
	if got := w.Header().Get("RateLimit"); got != `"writes";r=2;t=1` {
		t.Fatalf("RateLimit %q", got)
	}
	do(h, "DELETE", "/orders/v1/orders/1", "192.0.2.1:1")
	do(h, "DELETE", "/orders/v1/orders/1", "192.0.2.1:1")
	if w := do(h, "DELETE", "/orders/v1/orders/1", "192.0.2.1:1"); w.Code != 429 {
		t.Fatalf("fourth write of a burst of 3: %d", w.Code)
	}
	clk.Add(500 * time.Millisecond) // one token back at 2/s
	if w := do(h, "DELETE", "/orders/v1/orders/1", "192.0.2.1:1"); w.Code != 200 {
		t.Fatalf("after 0.5 s: %d", w.Code)
	}
}

func TestInstancesShareTheQuota(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newTestLimiter(t, clk, Config{Instances: 2})
	if got := do(h, "GET", "/", "192.0.2.1:1").Header().Get("RateLimit-Policy"); got != `"reads";q=2;w=1` {
		t.Fatalf("with 2 instances each enforces half of 5/s: %q", got)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.9:5000", []string{"198.51.100.1"}, "192.0.2.9"},                       // untrusted peer: XFF ignored
		{"127.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},                    // trusted proxy
		{"127.0.0.1:5000", []string{"6.6.6.6, 198.51.100.1, 10.1.2.3"}, "198.51.100.1"}, // right-most untrusted
		{"127.0.0.1:5000", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},         // several header lines
		{"127.0.0.1:5000", []string{"not-an-ip"}, "127.0.0.1"},
		{"127.0.0.1:5000", nil, "127.0.0.1"},
		{"[::ffff:192.0.2.9]:1", nil, "192.0.2.9"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientAddr(r, trusted); got.String() != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:1"
	if got := AddrKey(nil)(r); got != "addr:2001:db8:1:2::/64" {
		t.Errorf("IPv6 key %q", got)
	}
}

func signIn(h http.Handler, remote, email, password string) *httptest.ResponseRecorder {
	form := url.Values{"email": {email}, "password": {password}}.Encode()
	r := httptest.NewRequest("POST", "/identity/login", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestSignInBackoff: failed sign-ins double the wait, per account (from any
// address) and per address (for any account); the body still reaches the
// provider; a success clears the account.
func TestSignInBackoff(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	h := newTestLimiter(t, clk, Config{Backoff: Backoff{Base: time.Second}})
	if w := signIn(h, "192.0.2.1:1", "Ann@example.com", "wrong"); w.Code != 401 {
		t.Fatalf("first failure: %d", w.Code)
	}
	// The account is held for 1 s, from another address too.
	if w := signIn(h, "192.0.2.7:1", "ann@example.com", "right"); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("account held: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// The address is held for another account too.
	if w := signIn(h, "192.0.2.1:2", "bob@example.com", "right"); w.Code != 429 {
		t.Fatalf("address held: %d", w.Code)
	}
	clk.Add(time.Second)
	if w := signIn(h, "192.0.2.1:1", "ann@example.com", "wrong"); w.Code != 401 {
		t.Fatalf("second failure: %d", w.Code)
	}
	if w := signIn(h, "192.0.2.8:1", "ann@example.com", "wrong"); w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("doubled: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	clk.Add(2 * time.Second)
	if w := signIn(h, "192.0.2.9:1", "ann@example.com", "right"); w.Code != http.StatusFound {
		t.Fatalf("right password after the wait: %d", w.Code)
	}
	// Success cleared the account: a new failure starts again at 1 s.
	signIn(h, "192.0.2.10:1", "ann@example.com", "wrong")
	if w := signIn(h, "192.0.2.11:1", "ann@example.com", "right"); w.Header().Get("Retry-After") != "1" {
		t.Fatalf("after success the penalty restarts: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Reads are not under the back-off.
	if w := do(h, "GET", "/orders/v1", "192.0.2.1:1"); w.Code != 200 {
		t.Fatalf("read from a held address: %d", w.Code)
	}
}

func TestClassify(t *testing.T) {
	routes, err := ParseRoutes("POST /identity/v1/accounts, /identity/oauth/*")
	if err != nil {
		t.Fatal(err)
	}
	c := &Classes{SignInRoutes: routes}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/orders/v1", ClassReads},
		{"HEAD", "/orders/v1", ClassReads},
		{"PATCH", "/orders/v1/orders/1", ClassWrites},
		{"POST", "/identity/v1/accounts", ClassSignIn},
		{"GET", "/identity/v1/accounts", ClassReads},
		{"GET", "/identity/oauth/authorize", ClassSignIn},
		{"POST", "/identity/oauth/token", ClassSignIn},
		{"POST", "/identity/oauthx", ClassWrites},
	} {
		if got := c.Classify(httptest.NewRequest(tc.method, tc.path, nil)); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"100", "x/s", "10/fortnight", "10/s burst 0", "10/1500ms"} {
		if _, err := ParseClass("reads", bad); err == nil {
			t.Errorf("ParseClass(%q) accepted", bad)
		}
	}
	if c, err := ParseClass("reads", "off"); err != nil || c.Quota != 0 {
		t.Errorf("off: %v %v", c, err)
	}
}

// TestMemoryIsBounded: a flood of distinct clients keeps at most MaxKeys
// buckets.
func TestMemoryIsBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	routes, _ := ParseRoutes(DefaultSignInRoutes)
	l, err := New(Config{Classes: &Classes{Reads: mustClass(t, ClassReads, "1/h"), SignInRoutes: routes}, MaxKeys: 320, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 20000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		do(h, "GET", "/", netip.AddrPortFrom(a, 1).String())
	}
	n := 0
	cl := l.classes[ClassReads]
	for i := range cl.shards {
		n += len(cl.shards[i].buckets)
	}
	if n > 320 {
		t.Fatalf("%d buckets kept, bound 320", n)
	}
}

func BenchmarkAllowed(b *testing.B) {
	routes, _ := ParseRoutes(DefaultSignInRoutes)
	l, _ := New(Config{Classes: &Classes{Reads: Class{Name: ClassReads, Quota: 1 << 30, Window: time.Second}, SignInRoutes: routes}})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/orders/v1/orders/1", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
