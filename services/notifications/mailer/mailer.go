// Package mailer sends e-mail through an SMTP server with the standard
// library's client (net/smtp): STARTTLS when the server offers it, PLAIN
// authentication when a user name is configured.
//
// Environment (read by ConfigFrom):
//
//	SMTP_ADDR      host:port of the server; empty: no server (nothing is sent)
//	SMTP_FROM      the sender, an RFC 5322 address (default Sagittarius <no-reply@sagittarius.localhost>)
//	SMTP_USERNAME  optional: authenticate (PLAIN; net/smtp refuses it without TLS except on localhost)
//	SMTP_PASSWORD  with SMTP_USERNAME
//	SMTP_TIMEOUT   bound of one conversation (default 30s)
package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// Environment variables read by ConfigFrom.
const (
	EnvAddr     = "SMTP_ADDR"
	EnvFrom     = "SMTP_FROM"
	EnvUsername = "SMTP_USERNAME"
	EnvPassword = "SMTP_PASSWORD"
	EnvTimeout  = "SMTP_TIMEOUT"
)

// DefaultFrom is the sender when SMTP_FROM is not set.
const DefaultFrom = "Sagittarius <no-reply@sagittarius.localhost>"

// Config is the SMTP configuration.
type Config struct {
	Addr     string // host:port; "" means no server
	From     *mail.Address
	Username string
	Password string
	Timeout  time.Duration
}

// ConfigFrom reads the configuration from getenv and checks it: every
// invalid setting is reported, naming its variable.
func ConfigFrom(getenv func(string) string) (Config, error) {
	c := Config{Addr: getenv(EnvAddr), Username: getenv(EnvUsername), Password: getenv(EnvPassword), Timeout: 30 * time.Second}
	var errs []error
	if c.Addr != "" {
		if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", EnvAddr, c.Addr))
		}
	}
	from := getenv(EnvFrom)
	if from == "" {
		from = DefaultFrom
	}
	var err error
	if c.From, err = mail.ParseAddress(from); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: %w", EnvFrom, from, err))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", EnvUsername, EnvPassword))
	}
	if v := getenv(EnvTimeout); v != "" {
		if c.Timeout, err = time.ParseDuration(v); err != nil || c.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a positive duration such as 30s", EnvTimeout, v))
		}
	}
	return c, errors.Join(errs...)
}

// Message is one e-mail, plain text.
type Message struct {
	To        string // an RFC 5322 address
	Subject   string
	Text      string
	MessageID string // unique, e.g. the notification's id: the Message-ID is <MessageID@sagittarius>
	Date      time.Time
}

// Mailer sends messages. It is safe for concurrent use: each Send is one SMTP conversation.
type Mailer struct {
	cfg Config
}

// New returns a Mailer on cfg.
func New(cfg Config) *Mailer { return &Mailer{cfg: cfg} }

// Configured reports whether a server is configured: without one, Send fails with ErrNoServer.
func (m *Mailer) Configured() bool { return m.cfg.Addr != "" }

// ErrNoServer: no SMTP server is configured.
var ErrNoServer = errors.New("no SMTP server configured")

// Error is a failed Send. Handed is true when the failure came after the
// server had received the whole message (its answer to the end of the data
// was an error or never came): the message may have been delivered.
type Error struct {
	Step   string
	Err    error
	Handed bool
}

func (e *Error) Error() string { return "smtp " + e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// MayHaveBeenDelivered reports whether err is a failure after the server had
// the whole message: sending it again could deliver it twice.
func MayHaveBeenDelivered(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Handed
}

// Send sends msg in one SMTP conversation, bounded by ctx and the configured timeout.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	if !m.Configured() {
		return ErrNoServer
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return &Error{Step: "recipient", Err: fmt.Errorf("%q: %w", msg.To, err)}
	}
	body, err := compose(m.cfg.From, to, msg)
	if err != nil {
		return &Error{Step: "compose", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return &Error{Step: "connect", Err: err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return &Error{Step: "greeting", Err: err}
	}
	defer c.Close()
	if err := c.Hello("sagittarius.localhost"); err != nil {
		return &Error{Step: "EHLO", Err: err}
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return &Error{Step: "STARTTLS", Err: err}
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, host)); err != nil {
			return &Error{Step: "AUTH", Err: err}
		}
	}
	if err := c.Mail(m.cfg.From.Address); err != nil {
		return &Error{Step: "MAIL FROM", Err: err}
	}
	if err := c.Rcpt(to.Address); err != nil {
		return &Error{Step: "RCPT TO", Err: err}
	}
	w, err := c.Data()
	if err != nil {
		return &Error{Step: "DATA", Err: err}
	}
	if _, err := w.Write(body); err != nil {
		w.Close()
		return &Error{Step: "DATA", Err: err} // the end of the data was not sent: not handed over
	}
	if err := w.Close(); err != nil {
		return &Error{Step: "end of DATA", Err: err, Handed: true}
	}
	c.Quit() // the message is accepted; an error saying goodbye changes nothing
	return nil
}

// compose renders the message: headers (the subject encoded when not
// ASCII) and the text in quoted-printable UTF-8, lines ending in CRLF.
func compose(from, to *mail.Address, msg Message) ([]byte, error) {
	if strings.ContainsAny(msg.Subject+msg.MessageID, "\r\n") {
		return nil, errors.New("a line break in the subject or message id")
	}
	date := msg.Date
	if date.IsZero() {
		date = time.Now()
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	header("Date", date.UTC().Format(time.RFC1123Z))
	if msg.MessageID != "" {
		header("Message-ID", "<"+msg.MessageID+"@sagittarius>")
	}
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}
