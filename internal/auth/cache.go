package auth

import (
	"sync"
	"time"
)

// tokenCache maps the SHA-256 of a verified token to its Principal until the
// token expires. It holds at most max entries: when full, expired entries are
// swept, then arbitrary ones dropped (map order) down to 7/8 of max. Only
// verified tokens enter it, so a flood of forged tokens cannot fill it with
// anything but its own misses. It is safe for concurrent use.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p     *Principal
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[32]byte]cacheEntry, min(max, 1024))}
}

// get returns the Principal cached for sum when its entry is still valid at now.
func (c *tokenCache) get(sum [32]byte, now time.Time) (*Principal, bool) {
	c.mu.RLock()
	e, ok := c.m[sum]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		c.mu.Lock()
		if e2, ok := c.m[sum]; ok && !now.Before(e2.until) {
			delete(c.m, sum)
		}
		c.mu.Unlock()
		return nil, false
	}
	return e.p, true
}

// put caches p for sum until until.
func (c *tokenCache) put(sum [32]byte, p *Principal, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[sum]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[sum] = cacheEntry{p: p, until: until}
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
