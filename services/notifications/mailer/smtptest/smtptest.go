// Package smtptest is a tiny SMTP server for tests (net/textproto on
// 127.0.0.1): it speaks enough of RFC 5321 for net/smtp (EHLO, MAIL, RCPT,
// DATA with dot-unstuffing, RSET, NOOP, QUIT), records every message it
// accepts, and can be told to refuse them.
package smtptest

import (
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data string // as received, dot-unstuffed, lines ending in CRLF
}

// Mode is how the server answers.
type Mode int

// The modes.
const (
	Accept       Mode = iota // accept every message
	RefuseMail               // 451 to MAIL FROM: a temporary failure before the message
	RefuseAtData             // 554 after the end of the data: the server had the message
)

// Server is a running test SMTP server.
type Server struct {
	Addr string

	ln   net.Listener
	mu   sync.Mutex
	mode Mode
	msgs []Message
	wg   sync.WaitGroup
}

// Start starts a server on a free port of 127.0.0.1, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and waits for its conversations to end.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// SetMode changes how the server answers from the next command on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func (s *Server) currentMode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.serve(textproto.NewConn(conn))
		}()
	}
}

func (s *Server) serve(c *textproto.Conn) {
	reply := func(line string) bool { return c.PrintfLine("%s", line) == nil }
	if !reply("220 smtptest ready") {
		return
	}
	var cur Message
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			reply("250-smtptest\r\n250 8BITMIME")
		case "MAIL":
			if s.currentMode() == RefuseMail {
				reply("451 4.3.0 try again later")
				continue
			}
			cur = Message{From: addr(arg)}
			reply("250 2.1.0 ok")
		case "RCPT":
			cur.To = append(cur.To, addr(arg))
			reply("250 2.1.5 ok")
		case "DATA":
			if cur.From == "" || len(cur.To) == 0 {
				reply("503 5.5.1 MAIL and RCPT first")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			b, err := c.ReadDotBytes()
			if err != nil {
				return
			}
			cur.Data = strings.ReplaceAll(string(b), "\n", "\r\n")
			if s.currentMode() == RefuseAtData {
				reply("554 5.6.0 message refused")
				cur = Message{}
				continue
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			cur = Message{}
			reply("250 2.0.0 queued")
		case "RSET":
			cur = Message{}
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 command not implemented")
		}
	}
}

// addr returns the address of "FROM:<a@b>" or "TO:<a@b> SIZE=…".
func addr(arg string) string {
	_, rest, _ := strings.Cut(arg, ":")
	rest = strings.TrimSpace(rest)
	if i := strings.IndexByte(rest, '>'); strings.HasPrefix(rest, "<") && i > 0 {
		return rest[1:i]
	}
	return rest
}
