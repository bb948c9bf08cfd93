package ratelimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Backoff is the penalty after failed sign-ins: each answer 401 on a route
// of the sign-in class counts one failure against the account named in the
// request (form or JSON field email, username or client_id, or the Basic
// user) and one against the client (the Limiter's key). After n failures,
// further sign-ins of that account, or from that client, are refused with
// 429 for Base·2^(n-1), at most Max. A successful sign-in (2xx or 3xx)
// clears the account's count; a count is forgotten after Forget without
// failure.
type Backoff struct {
	Base   time.Duration // first penalty; 0: no back-off
	Max    time.Duration // longest penalty; default 15m
	Forget time.Duration // a count is forgotten after this long without failure; default 1h
}

// maxSignInBody is how much of a sign-in request the limiter reads to find
// the account (the bodies are a few form fields).
const maxSignInBody = 16 << 10

type strike struct {
	fails int
	until time.Time // refused until then
	last  time.Time // last failure
}

type backoffTable struct {
	cfg     Backoff
	maxKeys int
	mu      sync.Mutex
	m       map[string]*strike
}

func newBackoffTable(cfg Backoff, maxKeys int) *backoffTable {
	if cfg.Max == 0 {
		cfg.Max = 15 * time.Minute
	}
	if cfg.Forget == 0 {
		cfg.Forget = time.Hour
	}
	return &backoffTable{cfg: cfg, maxKeys: maxKeys, m: map[string]*strike{}}
}

// blocked returns how long key is still refused at now (0: not refused).
func (t *backoffTable) blocked(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[key]
	if s == nil {
		return 0
	}
	if now.Sub(s.last) > t.cfg.Forget {
		delete(t.m, key)
		return 0
	}
	return max(0, s.until.Sub(now))
}

// fail counts one failure of key at now.
func (t *backoffTable) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[key]
	if s == nil || now.Sub(s.last) > t.cfg.Forget {
		if len(t.m) >= t.maxKeys {
			t.evict(now)
		}
		s = &strike{}
		t.m[key] = s
	}
	s.fails++
	s.last = now
	penalty := t.cfg.Max
	if s.fails <= 30 {
		penalty = min(t.cfg.Max, t.cfg.Base<<(s.fails-1))
	}
	s.until = now.Add(penalty)
}

// clear forgets key's failures.
func (t *backoffTable) clear(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

// evict drops forgotten counts, then arbitrary ones down to 3/4 of the cap.
// Called with t.mu held.
func (t *backoffTable) evict(now time.Time) {
	for k, s := range t.m {
		if now.Sub(s.last) > t.cfg.Forget {
			delete(t.m, k)
		}
	}
	for k := range t.m {
		if len(t.m) < t.maxKeys*3/4 {
			break
		}
		delete(t.m, k)
	}
}

// signIn serves a request of the sign-in class under the back-off.
func (l *Limiter) signIn(w http.ResponseWriter, r *http.Request, next http.Handler, clientKey string, now time.Time) {
	account := accountOf(r)
	keys := []string{"client " + clientKey}
	if account != "" {
		keys = append(keys, "account "+account)
	}
	var wait time.Duration
	for _, k := range keys {
		wait = max(wait, l.backoff.blocked(k, now))
	}
	if wait > 0 {
		secs := ceilSeconds(wait.Seconds())
		refuse(w, r, secs, fmt.Sprintf("too many failed sign-ins for this account or from this client; retry in %d s", secs))
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	switch {
	case sw.status == http.StatusUnauthorized:
		for _, k := range keys {
			l.backoff.fail(k, l.cfg.Now())
		}
	case sw.status >= 200 && sw.status < 400 && account != "":
		l.backoff.clear("account " + account)
	}
}

// accountOf returns the account a sign-in request names (lower-cased), or
// "". It reads at most maxSignInBody bytes of the body and puts them back.
func accountOf(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return strings.ToLower(user)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSignInBody))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return ""
		}
		for _, f := range []string{"email", "username", "client_id"} {
			if s := v.Get(f); s != "" {
				return strings.ToLower(s)
			}
		}
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		var v struct {
			Email    string `json:"email"`
			Username string `json:"username"`
		}
		if json.Unmarshal(body, &v) == nil {
			return strings.ToLower(v.Email + v.Username)
		}
	}
	return ""
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
