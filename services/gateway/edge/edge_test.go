package edge

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/gateway/ratelimit"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func ok(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", `"1"`)
	_, _ = io.WriteString(w, "ok")
}

// serve runs the edge in front of h on a loopback port as the gateway does
// (Listen, httpkit.NewServer) and returns the base URL.
func serve(t *testing.T, vars map[string]string, h http.HandlerFunc) (string, *Edge) {
	t.Helper()
	e, err := New(ConfigFrom(env(vars)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := e.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stack := httpkit.Stack(e.Wrap(h), httpkit.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go func() { done <- httpkit.Serve(ctx, httpkit.NewServer(stack), ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	scheme := "http://"
	if e.TLS() {
		scheme = "https://"
	}
	return scheme + ln.Addr().String(), e
}

func TestCORS(t *testing.T) {
	base, _ := serve(t, map[string]string{"CORS_ALLOWED_ORIGINS": "https://shop.example.com, http://localhost:5173"}, ok)
	send := func(method, origin string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/orders/v1/orders/1", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	// Preflight from an allowed origin: answered here, 204, with the lists.
	res := send("OPTIONS", "https://shop.example.com", "Access-Control-Request-Method", "PATCH", "Access-Control-Request-Headers", "authorization, if-match")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Fatalf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	for _, want := range []string{"PATCH", "DELETE"} {
		if !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), want) {
			t.Errorf("Allow-Methods %q lacks %s", res.Header.Get("Access-Control-Allow-Methods"), want)
		}
	}
	for _, want := range []string{"Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-Id"} {
		if !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Allow-Headers lacks %s", want)
		}
	}
	if res.Header.Get("RateLimit") != "" {
		t.Errorf("a preflight is not counted: %v", res.Header)
	}
	// Preflight from another origin: no CORS header.
	res = send("OPTIONS", "https://evil.example.net", "Access-Control-Request-Method", "DELETE")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("denied preflight: %d %v", res.StatusCode, res.Header)
	}
	// Actual request from an allowed origin: allowed and exposed headers.
	res = send("GET", "http://localhost:5173")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Fatalf("allowed GET: %d %v", res.StatusCode, res.Header)
	}
	for _, want := range []string{"ETag", "Location", "RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-Id"} {
		if !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("Expose-Headers lacks %s", want)
		}
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary lacks Origin: %v", res.Header)
	}
	// From another origin, or none: served, but no CORS header.
	for _, origin := range []string{"https://evil.example.net", "https://shop.example.com.evil.net", ""} {
		res = send("GET", origin)
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Expose-Headers") != "" {
			t.Errorf("origin %q: %d %v", origin, res.StatusCode, res.Header)
		}
	}
	if _, err := ParseOrigins("https://ok.example, shop.example.com"); err == nil {
		t.Error("an origin without scheme was accepted")
	}
}

// TestOversizedHeaders: headers over httpkit.MaxHeaderBytes get 431
// problem+json; far over (httpkit.MaxHeaderBytesRead) the server stops
// reading and answers 431 itself.
func TestOversizedHeaders(t *testing.T) {
	base, _ := serve(t, nil, ok)
	req, _ := http.NewRequest("GET", base+"/", nil)
	for _, size := range []int{httpkit.MaxHeaderBytes, httpkit.MaxHeaderBytesRead + 8<<10} {
		req.Header.Set("X-Big", strings.Repeat("a", size))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%d bytes of headers: %d, want 431", size, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); size == httpkit.MaxHeaderBytes && ct != "application/problem+json" {
			t.Fatalf("431 Content-Type %q", ct)
		}
	}
	req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("8 KiB of headers: %v %v", res, err)
	}
	res.Body.Close()
}

// TestSlowClientsAreBounded: a client that opens connections and sends
// nothing can hold at most MAX_CONNS_PER_CLIENT; the next one is answered
// 503 and closed, and one is free again once a held connection closes.
func TestSlowClientsAreBounded(t *testing.T) {
	base, _ := serve(t, map[string]string{"MAX_CONNS_PER_CLIENT": "3"}, ok)
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // never finishes its headers
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("fourth connection: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	c.Close()
	if res.StatusCode != 503 || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"status":503`) {
		t.Fatalf("fourth connection: %d %q", res.StatusCode, body)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(base + "/")
		if err == nil && res.StatusCode == 200 {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection freed: %v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}

// TestHTTPS: with TLS_CERT_FILE and TLS_KEY_FILE the gateway serves HTTPS;
// a client trusting the CA is served, a client trusting another CA is
// refused with a certificate error, and plain HTTP gets no answer.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	certFile, keyFile := ca.issue(t, dir, "gateway")
	base, _ := serve(t, map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}, ok)
	if !strings.HasPrefix(base, "https://") {
		t.Fatal(base)
	}
	client := func(pool *x509.CertPool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	res, err := client(ca.pool()).Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("trusted client: %d %+v", res.StatusCode, res.TLS)
	}
	_, err = client(newCA(t, "other CA").pool()).Get(base + "/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client with another CA: %v, want x509.UnknownAuthorityError", err)
	}
	if res, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/"); err == nil && res.StatusCode == 200 {
		t.Fatal("plain HTTP served by the HTTPS gateway")
	}
	if _, err := New(ConfigFrom(env(map[string]string{"TLS_CERT_FILE": certFile})), nil); err == nil {
		t.Fatal("TLS_CERT_FILE without TLS_KEY_FILE accepted")
	}
}

// TestRateLimitThroughTheEdge: the 429 of a flood carries the CORS headers
// (a browser application can read it) and the RateLimit headers.
func TestRateLimitThroughTheEdge(t *testing.T) {
	base, _ := serve(t, map[string]string{"RATE_LIMIT_READS": "3/m", "CORS_ALLOWED_ORIGINS": "https://shop.example.com"}, ok)
	var res *http.Response
	for range 4 {
		req, _ := http.NewRequest("GET", base+"/orders/v1", nil)
		req.Header.Set("Origin", "https://shop.example.com")
		var err error
		if res, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "20" || res.Header.Get("RateLimit-Policy") != `"reads";q=3;w=60` ||
		res.Header.Get("RateLimit") != `"reads";r=0;t=20` || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Fatalf("flood: %d %v", res.StatusCode, res.Header)
	}
	if _, err := New(ConfigFrom(env(map[string]string{"RATE_LIMIT_WRITES": "lots"})), nil); err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_WRITES") {
		t.Fatalf("bad RATE_LIMIT_WRITES: %v", err)
	}
}

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a server certificate for 127.0.0.1 and localhost and its key.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

type subjectKey struct{}

// TestPerSubject: with an identifying middleware and SubjectKey, two
// subjects behind one address have a bucket each, and anonymous requests
// from that address share the address's.
func TestPerSubject(t *testing.T) {
	cfg := ConfigFrom(env(map[string]string{"RATE_LIMIT_READS": "2/m"}))
	subject := func(r *http.Request) (string, bool) {
		s, ok := r.Context().Value(subjectKey{}).(string)
		return s, ok
	}
	e, err := New(cfg, ratelimit.SubjectKey(subject, AddrKey(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	identify := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				r = r.WithContext(context.WithValue(r.Context(), subjectKey{}, tok))
			}
			next.ServeHTTP(w, r)
		})
	}
	h := e.WrapIdentified(identify, http.HandlerFunc(ok))
	status := func(auth string) int {
		r := httptest.NewRequest("GET", "/orders/v1", nil)
		r.RemoteAddr = "192.0.2.1:1"
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, who := range []string{"ann", "bob", ""} {
		for i := range 2 {
			if got := status(who); got != 200 {
				t.Fatalf("%q read %d: %d", who, i+1, got)
			}
		}
		if got := status(who); got != 429 {
			t.Fatalf("%q third read: %d, want 429", who, got)
		}
	}
}
