package platform

import (
	"fmt"
	"net"
	"sync"
)

// ProxyMode is what a Proxy does with the bytes between its clients and the
// upstream.
type ProxyMode int

const (
	// Pass forwards everything: the proxy is invisible.
	Pass ProxyMode = iota
	// Cut resets every open connection (both sides, RST) and resets every
	// new one at once, like a link that is down with the hosts still up.
	Cut
	// Blackhole keeps every connection open but forwards nothing, in either
	// direction, like a network that silently drops packets. New connections
	// are accepted and stay silent too. Bytes already read are held, not
	// dropped: after Restore the streams resume intact, as TCP would after
	// retransmission, unless an end gave up meanwhile.
	Blackhole
)

func (m ProxyMode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("ProxyMode(%d)", int(m))
}

// Proxy is a TCP proxy between clients (a service) and one upstream address
// (the broker) whose link can be cut or black-holed and restored. Its methods
// are safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	mode    ProxyMode
	resumed chan struct{} // closed when the mode leaves Blackhole
	conns   map[*proxyConn]struct{}
	closed  bool
	wg      sync.WaitGroup
	total   int // connections accepted so far
}

type proxyConn struct{ client, upstream net.Conn }

// NewProxy listens on listenAddr (e.g. 127.0.0.1:0) and forwards every
// connection to upstream, in mode Pass. Close stops it.
func NewProxy(listenAddr, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, resumed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	close(p.resumed)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Mode returns the current mode.
func (p *Proxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Connections returns how many connections the proxy has accepted so far
// and how many are open now.
func (p *Proxy) Connections() (total, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, len(p.conns)
}

// Set switches to mode m. Switching to Cut resets every open connection;
// leaving Blackhole lets held bytes flow again.
func (p *Proxy) Set(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	if m == Blackhole {
		p.resumed = make(chan struct{})
	} else if p.mode == Blackhole {
		close(p.resumed)
	}
	p.mode = m
	if m == Cut {
		for c := range p.conns {
			reset(c.client)
			reset(c.upstream)
		}
	}
}

// Restore is Set(Pass).
func (p *Proxy) Restore() { p.Set(Pass) }

// Close stops accepting, resets every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.mode == Blackhole {
		close(p.resumed)
		p.mode = Pass
	}
	for c := range p.conns {
		reset(c.client)
		reset(c.upstream)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		p.total++
		mode := p.mode
		p.mu.Unlock()
		if mode == Cut {
			reset(client)
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	upstream, err := net.Dial("tcp", p.upstream)
	if err != nil {
		reset(client) // the upstream is down: so is the link
		return
	}
	c := &proxyConn{client: client, upstream: upstream}
	p.mu.Lock()
	if p.closed || p.mode == Cut {
		p.mu.Unlock()
		reset(client)
		reset(upstream)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(upstream, client) }()
	go func() { defer wg.Done(); p.pipe(client, upstream) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	client.Close()
	upstream.Close()
}

// pipe copies src to dst until either fails, holding bytes while the proxy
// black-holes. When it ends, both connections are closed so that the other
// direction ends too.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		p.waitResumed()
		n, err := src.Read(buf)
		if n > 0 {
			p.waitResumed() // read before the switch: hold it
			if p.Mode() == Cut {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// EOF included: half-closed connections are not worth
			// modelling, AMQP never uses them.
			return
		}
	}
}

func (p *Proxy) waitResumed() {
	p.mu.Lock()
	ch := p.resumed
	p.mu.Unlock()
	<-ch
}

// reset closes c with an RST instead of a FIN, as a broken link would look.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
