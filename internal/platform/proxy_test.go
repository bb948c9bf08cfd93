package platform

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line it receives with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func newTestProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip writes line and reads the answer within d; it returns the answer
// or the error (a timeout error when nothing came back).
func (c *lineConn) roundTrip(line string, d time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func mustEcho(t *testing.T, c *lineConn, line string) {
	t.Helper()
	got, err := c.roundTrip(line, 2*time.Second)
	if err != nil || got != line {
		t.Fatalf("echo of %q: got %q, %v", line, got, err)
	}
}

func TestProxyPassesBytesBothWays(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	for _, s := range []string{"hello", strings.Repeat("x", 100_000)} {
		mustEcho(t, c, s)
	}
	if total, open := p.Connections(); total != 1 || open != 1 {
		t.Fatalf("connections: %d total, %d open; want 1, 1", total, open)
	}
}

func TestProxyCutResetsOpenAndNewConnectionsUntilRestored(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	mustEcho(t, c, "before")

	p.Set(Cut)
	if _, err := c.roundTrip("during", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("open connection after Cut: err %v, want a reset or EOF (not a timeout)", err)
	}
	expectReset(t, p) // a new connection is reset by the proxy

	p.Restore()
	mustEcho(t, dial(t, p), "after")
	waitFor(t, func() bool { _, open := p.Connections(); return open == 1 }, "only the new connection left open")
}

func TestProxyBlackholeHoldsBytesAndResumesIntact(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	mustEcho(t, c, "before")

	p.Set(Blackhole)
	if got, err := c.roundTrip("held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("during Blackhole: got %q, %v; want a timeout", got, err)
	}
	fresh := dial(t, p) // a connection made during the blackhole stays silent too
	if got, err := fresh.roundTrip("silent", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during Blackhole: got %q, %v; want a timeout", got, err)
	}

	p.Restore()
	// The held line arrives, then the stream goes on: nothing lost, nothing reordered.
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if s, err := c.r.ReadString('\n'); err != nil || s != "held\n" {
		t.Fatalf("after Restore: got %q, %v; want the held line", s, err)
	}
	mustEcho(t, c, "after")
	_ = fresh.SetDeadline(time.Now().Add(2 * time.Second))
	if s, err := fresh.r.ReadString('\n'); err != nil || s != "silent\n" {
		t.Fatalf("new connection after Restore: got %q, %v", s, err)
	}
}

func TestProxyCutDuringBlackholeResets(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	mustEcho(t, c, "before")
	p.Set(Blackhole)
	p.Set(Cut)
	if _, err := c.roundTrip("x", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after Blackhole then Cut: err %v, want a reset", err)
	}
	p.Restore()
	mustEcho(t, dial(t, p), "again")
}

func TestProxyUpstreamDownResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := NewProxy("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	expectReset(t, p)
}

func TestProxyCloseEndsEverything(t *testing.T) {
	p, err := NewProxy("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	mustEcho(t, c, "x")
	p.Set(Blackhole)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while black-holing")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("the proxy still accepts after Close")
	}
}

// expectReset connects through p and expects the connection to be reset
// (during the handshake, or at the first exchange), not to time out.
func expectReset(t *testing.T, p *Proxy) {
	t.Helper()
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return // reset before the client saw the handshake end
	}
	defer nc.Close()
	c := &lineConn{Conn: nc, r: bufio.NewReader(nc)}
	if _, err := c.roundTrip("x", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("err %v, want a reset or EOF", err)
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
