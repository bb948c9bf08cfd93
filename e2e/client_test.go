package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// response is an HTTP answer, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v, failing the test on error.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %T from %s: %v", v, r.Body, err)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: staffTransport{}}

// staffToken returns the staff token of the running cluster (startCluster
// sets it): the identity service's demo client, with client credentials.
var staffToken func() (string, error)

// staffTransport sends every request with the cluster's staff token, unless
// the request has an Authorization header already (an empty one sends no
// token: Guard reads it as none).
type staffTransport struct{ next http.RoundTripper }

func (st staffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := st.next
	if next == nil {
		next = http.DefaultTransport
	}
	if _, set := r.Header["Authorization"]; set || staffToken == nil {
		return next.RoundTrip(r)
	}
	tok, err := staffToken()
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return next.RoundTrip(r)
}

// call sends one request with a JSON body (unless body is nil) and returns
// the answer. Network errors fail the test.
func call(t *testing.T, method, url string, body any, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/hal+json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mustCall is call that fails the test unless the status is want.
func mustCall(t *testing.T, want int, method, url string, body any, header map[string]string) response {
	t.Helper()
	r := call(t, method, url, body, header)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, r.Status, want, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); len(r.Body) > 0 && !strings.HasPrefix(ct, "application/hal+json") && !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return r
}

// get GETs url (200 expected) into v.
func get(t *testing.T, url string, v any) response {
	t.Helper()
	r := mustCall(t, http.StatusOK, http.MethodGet, url, nil, nil)
	r.decode(t, v)
	return r
}

// eventually polls cond every 50 ms until it returns true or the deadline
// passes, then fails the test with what it was waiting for and the last
// state cond described.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", within, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
