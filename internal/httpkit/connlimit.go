package httpkit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ConnLimits bounds the connections a listener keeps open, so that slow
// clients holding connections (slowloris) cannot take them all.
type ConnLimits struct {
	// PerClient bounds the open connections of one client address
	// (IPv6: per /64). 0: no bound.
	PerClient int
	// Total bounds all open connections. 0: no bound.
	Total int
	// Exempt addresses (e.g. the trusted proxies in front of the gateway,
	// which carry many clients' connections) count only towards Total.
	Exempt []netip.Prefix
}

// tooManyConns is what a refused connection reads before it is closed.
const tooManyConns = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 120\r\n\r\n" +
	`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many open connections from this client"}` + "\n"

// LimitConns returns ln bounded by lim: a connection over a bound is
// answered with a plain 503 (written with a 1-second deadline, in its own
// goroutine, never blocking Accept) and closed. Connections count until
// they are closed.
func LimitConns(ln net.Listener, lim ConnLimits) net.Listener {
	if lim.PerClient <= 0 && lim.Total <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, lim: lim, open: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	lim   ConnLimits
	mu    sync.Mutex
	open  map[netip.Addr]int
	total int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, counted, ok := l.admit(c.RemoteAddr())
		if ok {
			return &limitConn{Conn: c, l: l, key: key, counted: counted}, nil
		}
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(tooManyConns))
			_ = c.Close()
		}()
	}
}

// admit counts a new connection from addr, or reports that it is over a bound.
func (l *limitListener) admit(addr net.Addr) (key netip.Addr, perClient, ok bool) {
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		key = ap.Addr().Unmap()
		if key.Is6() {
			p, _ := key.Prefix(64)
			key = p.Addr()
		}
	}
	perClient = l.lim.PerClient > 0 && key.IsValid()
	for _, p := range l.lim.Exempt {
		if p.Contains(key) {
			perClient = false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.total >= l.lim.Total {
		return key, false, false
	}
	if perClient && l.open[key] >= l.lim.PerClient {
		return key, false, false
	}
	l.total++
	if perClient {
		l.open[key]++
	}
	return key, perClient, true
}

func (l *limitListener) release(key netip.Addr, perClient bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if perClient {
		if l.open[key]--; l.open[key] <= 0 {
			delete(l.open, key)
		}
	}
}

type limitConn struct {
	net.Conn
	l       *limitListener
	key     netip.Addr
	counted bool
	once    sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key, c.counted) })
	return err
}
