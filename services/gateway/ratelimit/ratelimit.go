// Package ratelimit limits the request rate of each client at the gateway:
// one token bucket (golang.org/x/time/rate) per client and class of route,
// and a growing back-off against password guessing on the sign-in routes.
//
// A request is classified by Classes.Classify (reads, writes, sign-in by
// default) and keyed by a KeyFunc: the verified subject when authentication
// is on, else the client's address (ClientAddr, which honours
// X-Forwarded-For only from trusted proxies). An allowed request is passed
// on and its answer carries
//
//	RateLimit-Policy: "reads";q=100;w=1
//	RateLimit: "reads";r=99;t=1
//
// (draft-ietf-httpapi-ratelimit-headers-11, structured fields: q is the
// quota of requests per window of w seconds, r the requests left, t the
// seconds until the quota is back: until the next request is allowed when r
// is 0, else until the bucket is full). A refused request gets 429
// problem+json with the same headers and Retry-After (seconds).
//
// Buckets live in memory, per gateway instance: see Config.Instances for
// how a limit holds across instances. Memory is bounded: a bucket that is
// full again is dropped (a fresh bucket is the same), and at most
// Config.MaxKeys are kept.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Header names (draft-ietf-httpapi-ratelimit-headers-11).
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
)

// The keys of the headers in an http.Header (set directly: no
// canonicalisation per request).
var (
	canonicalPolicy    = http.CanonicalHeaderKey(HeaderPolicy)
	canonicalRateLimit = http.CanonicalHeaderKey(HeaderRateLimit)
)

// Class is a class of routes sharing one limit: Quota requests per Window,
// with bursts of up to Burst requests (a token bucket refilled at
// Quota/Window).
type Class struct {
	Name   string        // the policy's name in the headers, e.g. "reads"
	Quota  int           // requests per Window; 0 means unlimited (no bucket, no headers)
	Window time.Duration // at least 1s, whole seconds
	Burst  int           // bucket size; default Quota
}

// ParseClass parses a limit written as "<quota>/<unit>[ burst <n>]" where
// unit is s, m or h (or a duration such as 10s): "100/s", "600/m burst 50",
// "10/m". "off" or "0" means unlimited.
func ParseClass(name, v string) (Class, error) {
	c := Class{Name: name}
	v = strings.TrimSpace(v)
	if v == "off" || v == "0" {
		return c, nil
	}
	spec, burst, hasBurst := strings.Cut(v, " burst ")
	q, unit, ok := strings.Cut(strings.TrimSpace(spec), "/")
	n, err := strconv.Atoi(q)
	if !ok || err != nil || n < 1 {
		return c, fmt.Errorf("%q: want <requests>/<s|m|h>[ burst <n>], e.g. 100/s burst 200", v)
	}
	c.Quota = n
	switch unit {
	case "s":
		c.Window = time.Second
	case "m":
		c.Window = time.Minute
	case "h":
		c.Window = time.Hour
	default:
		d, err := time.ParseDuration(unit)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return c, fmt.Errorf("%q: the window must be s, m, h or whole seconds", v)
		}
		c.Window = d
	}
	c.Burst = n
	if hasBurst {
		b, err := strconv.Atoi(strings.TrimSpace(burst))
		if err != nil || b < 1 {
			return c, fmt.Errorf("%q: burst must be a positive integer", v)
		}
		c.Burst = b
	}
	return c, nil
}

// String formats c as ParseClass reads it.
func (c Class) String() string {
	if c.Quota == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s burst %d", c.Quota, c.Window, c.Burst)
}

// KeyFunc names the client a request is counted against. The default,
// ClientAddr with the configured trusted proxies, counts per client
// address; with authentication on, count per verified subject (e.g.
// "sub:"+principal.Subject) and fall back to the address when anonymous.
// It must be cheap and safe for concurrent use.
type KeyFunc func(r *http.Request) string

// Config configures a Limiter.
type Config struct {
	// Classes and the rules choosing one per request. Required.
	Classes *Classes
	// Key names the client; default: the client address (no trusted proxy).
	Key KeyFunc
	// Instances is how many gateway instances share the traffic (their
	// load balancer spreads it): each instance enforces Quota/Instances
	// (at least 1) so that a client gets about Quota in all. Default 1.
	Instances int
	// MaxKeys bounds the buckets kept per class (memory). Default 100,000.
	MaxKeys int
	// Backoff is the growing penalty after failed sign-ins (401 on a
	// sign-in route), per account and per client. Zero Base: off.
	Backoff Backoff
	// Now is the clock; default time.Now (tests set it).
	Now func() time.Time
}

// Limiter is the rate-limiting middleware. It is safe for concurrent use.
type Limiter struct {
	cfg     Config
	classes map[string]*classLimiter
	backoff *backoffTable
}

// New checks cfg and returns the limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.Classes == nil {
		return nil, errors.New("ratelimit: Config.Classes is required")
	}
	if cfg.Key == nil {
		cfg.Key = AddrKey(nil)
	}
	if cfg.Instances < 1 {
		cfg.Instances = 1
	}
	if cfg.MaxKeys < 1 {
		cfg.MaxKeys = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{cfg: cfg, classes: map[string]*classLimiter{}}
	for _, c := range cfg.Classes.all() {
		if c.Quota == 0 {
			continue
		}
		if c.Window < time.Second || c.Window%time.Second != 0 {
			return nil, fmt.Errorf("ratelimit: class %s: window %s: want whole seconds", c.Name, c.Window)
		}
		if c.Burst < 1 {
			c.Burst = c.Quota
		}
		// Each instance enforces its share of the quota.
		q := max(1, c.Quota/cfg.Instances)
		b := max(1, c.Burst/cfg.Instances)
		l.classes[c.Name] = newClassLimiter(Class{Name: c.Name, Quota: q, Window: c.Window, Burst: b}, cfg.MaxKeys)
	}
	if cfg.Backoff.Base > 0 {
		l.backoff = newBackoffTable(cfg.Backoff, cfg.MaxKeys)
	}
	return l, nil
}

// Wrap returns next behind the limiter.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { l.serve(w, r, next) })
}

func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	class := l.cfg.Classes.Classify(r)
	cl := l.classes[class]
	if cl == nil && !(class == ClassSignIn && l.backoff != nil) {
		next.ServeHTTP(w, r)
		return
	}
	now := l.cfg.Now()
	key := l.cfg.Key(r)
	if cl != nil {
		ok, remaining, reset := cl.take(key, now)
		h := w.Header()
		h[canonicalPolicy] = cl.policyValue // shared, never modified: an append copies (len == cap)
		h[canonicalRateLimit] = []string{cl.state(remaining, reset)}
		if !ok {
			refuse(w, r, reset, fmt.Sprintf("more than %d requests in %s (policy %q) from this client; retry in %d s", cl.class.Quota, cl.class.Window, class, reset))
			return
		}
	}
	if class != ClassSignIn || l.backoff == nil {
		next.ServeHTTP(w, r)
		return
	}
	l.signIn(w, r, next, key, now)
}

// refuse writes the 429 problem with Retry-After.
func refuse(w http.ResponseWriter, r *http.Request, retryAfter int64, detail string) {
	w.Header().Set(HeaderRetryAfter, strconv.FormatInt(retryAfter, 10))
	problem.Write(w, r, problem.New(http.StatusTooManyRequests, detail))
}

// classLimiter holds the buckets of one class, in shards to spread the locks.
type classLimiter struct {
	class  Class
	limit  rate.Limit
	policy string // the RateLimit-Policy value
	// policyValue is policy as a header value, shared by every answer.
	policyValue []string
	prefix      string // `"reads";r=`
	full        time.Duration
	maxKeys     int
	shards      [shardCount]shard
}

const shardCount = 32

type shard struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	sweepAt int // sweep when the shard grows to this size
}

func newClassLimiter(c Class, maxKeys int) *classLimiter {
	cl := &classLimiter{class: c,
		limit:   rate.Limit(float64(c.Quota) / c.Window.Seconds()),
		policy:  fmt.Sprintf("%q;q=%d;w=%d", c.Name, c.Quota, int64(c.Window/time.Second)),
		prefix:  fmt.Sprintf("%q;r=", c.Name),
		maxKeys: max(1, maxKeys/shardCount),
	}
	cl.policyValue = []string{cl.policy}[:1:1]
	cl.full = time.Duration(float64(c.Burst) / float64(cl.limit) * float64(time.Second))
	for i := range cl.shards {
		cl.shards[i].buckets = map[string]*rate.Limiter{}
		cl.shards[i].sweepAt = 64
	}
	return cl
}

// take spends one token of key's bucket at now. It reports whether the
// request may pass, the whole tokens left, and the seconds until the next
// token (refused or none left) or until the bucket is full (t of RateLimit).
func (cl *classLimiter) take(key string, now time.Time) (ok bool, remaining int64, reset int64) {
	s := &cl.shards[fnv(key)%shardCount]
	s.mu.Lock()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= s.sweepAt {
			cl.sweep(s, now)
		}
		b = rate.NewLimiter(cl.limit, cl.class.Burst)
		s.buckets[key] = b
	}
	s.mu.Unlock()
	ok = b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	remaining = int64(math.Floor(tokens))
	if remaining < 1 {
		remaining = 0
		// Seconds until one whole token: the earliest retry.
		reset = ceilSeconds((1 - tokens) / float64(cl.limit))
		return ok, remaining, max(reset, 1)
	}
	return ok, remaining, ceilSeconds((float64(cl.class.Burst) - tokens) / float64(cl.limit))
}

// sweep drops the buckets that are full again (as good as new), then, if
// the shard is still at its cap, arbitrary others (their clients start
// afresh: the price of bounded memory). Called with s.mu held.
func (cl *classLimiter) sweep(s *shard, now time.Time) {
	for k, b := range s.buckets {
		if b.TokensAt(now) >= float64(cl.class.Burst) {
			delete(s.buckets, k)
		}
	}
	for k := range s.buckets {
		if len(s.buckets) < cl.maxKeys {
			break
		}
		delete(s.buckets, k)
	}
	s.sweepAt = min(cl.maxKeys, max(64, 2*len(s.buckets)))
}

// state formats the RateLimit value.
func (cl *classLimiter) state(remaining, reset int64) string {
	var buf [64]byte
	b := append(buf[:0], cl.prefix...)
	b = strconv.AppendInt(b, remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	return string(b)
}

func ceilSeconds(s float64) int64 {
	if s <= 0 {
		return 0
	}
	return int64(math.Ceil(s - 1e-9))
}

// fnv is FNV-1a over key, without allocating.
func fnv(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}
