// Package servicetest runs one service in-process for its integration tests,
// against the real broker and database of internal/testinfra: a fresh vhost
// in which the service connects as a user with its production RabbitMQ
// permissions (testinfra.ServicePermissions), and a fresh database. The test
// publishes events to sagittarius-a as another service would, waits for the
// events the service publishes and calls its HTTP API.
//
//	func TestRun(t *testing.T) {
//		s := servicetest.Start(t, run, stockevents.Service)
//		s.Publish(orderevents.OrderPlaced.New(ctx, order))
//		entity := s.WaitEvent(stockevents.StockReserved.Type(), "reservation", nil)
//		code, body := s.Do("GET", "/v1/stock-items/p1", "")
//	}
//
// It is a package of its own, not part of testinfra, because it speaks the
// event bus's message format and the event bus's own tests use testinfra.
//
// A Service is used from the goroutine running the test: its methods call
// t.Fatal.
package servicetest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// RunFunc is a service's run function, the one its main calls: it runs the
// service until ctx is cancelled, reading its configuration through getenv
// and writing its logs to stdout, and returns nil after a clean stop.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

// Timeout bounds every wait of this package: the service becoming healthy,
// an event, a condition (Eventually).
const Timeout = 20 * time.Second

// Service is a service running in-process, and a client of its API and of
// the vhost it runs in.
type Service struct {
	// URL is the service's own base URL, http://127.0.0.1:<port>.
	URL string
	// Vhost is the fresh vhost the service runs in, and AdminURL the
	// administrator's AMQP URL of that vhost.
	Vhost, AdminURL string
	// DSN is the service's fresh database (administrator's credentials).
	DSN string
	// Logs holds what the service wrote to stdout; it is printed when the
	// test fails.
	Logs *testinfra.SyncBuffer
	// Issuer is the OpenID provider the service trusts (OIDC_ISSUER): the
	// test signs its tokens with it (Issuer.Customer, Issuer.Staff).
	Issuer *authtest.Issuer

	t      testing.TB
	pub    *amqp.Channel
	events <-chan amqp.Delivery
	seen   []amqp.Delivery // observed events not taken by WaitEvent or CountEvents yet
}

// Start runs run for service (its queue name, e.g. "logistics.inventory")
// with HTTP_ADDR on a free port, AMQP_URL of a user with the service's
// production permissions in a fresh vhost holding sagittarius-a, MYSQL_DSN of
// a fresh database, PUBLIC_BASE_URL http://gw.test, OIDC_ISSUER and
// OIDC_AUDIENCE of a test provider (Service.Issuer), and env (KEY=VALUE pairs)
// on top. It starts observing every event on sagittarius-a before the service
// starts, and returns once GET /health answers 200.
//
// When the test ends, the service's context is cancelled and run must return
// nil within 40 s, or the test fails; the vhost, the user and the database
// are removed. The service's logs are printed if the test failed.
func Start(t testing.TB, run RunFunc, service string, env ...string) *Service {
	t.Helper()
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	serviceURL := testinfra.NewServiceUser(t, vhost, service)
	dsn := testinfra.NewDatabaseDSN(t)
	s := &Service{Vhost: vhost, AdminURL: adminURL, DSN: dsn, Logs: &testinfra.SyncBuffer{}, Issuer: authtest.NewIssuer(t), t: t}
	s.observe()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s.URL = "http://" + addr
	vars := map[string]string{"HTTP_ADDR": addr, "AMQP_URL": serviceURL, "MYSQL_DSN": dsn, "PUBLIC_BASE_URL": "http://gw.test",
		"OIDC_ISSUER": s.Issuer.URL, "OIDC_AUDIENCE": authtest.Audience}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("servicetest.Start: %q is not KEY=VALUE", kv)
		}
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return vars[k] }, s.Logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(2 * Timeout):
			t.Error("run did not return within 40 s of its context's cancellation")
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", s.Logs.String())
		}
	})
	s.Eventually("healthy", func() bool {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("run returned during start: %v\nservice logs:\n%s", err, s.Logs.String())
		default:
		}
		code, _ := s.Do("GET", "/health", "")
		return code == http.StatusOK
	})
	return s
}

// observe opens the administrator's connection to the vhost: a channel to
// publish on, and an exclusive queue bound to sagittarius-a that receives a
// copy of every event.
func (s *Service) observe() {
	t := s.t
	conn, err := amqp.Dial(s.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if s.pub, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := sub.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.QueueBind(q.Name, "", eventbus.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	if s.events, err = sub.Consume(q.Name, "", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

// Publish sends msg to sagittarius-a with the properties its publisher would
// set, persistent, and returns once the broker accepted it. It takes the two
// results of an event type's New, so that a test can write
// s.Publish(orderevents.OrderPlaced.New(ctx, o)); a non-nil err fails the test.
// Publishing the same msg twice is a redelivery.
func (s *Service) Publish(msg eventbus.Message, err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	headers := amqp.Table{}
	for k, v := range msg.Headers {
		headers[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.pub.PublishWithContext(ctx, eventbus.Exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: msg.ID, Type: msg.Type,
		AppId: msg.AppID, Timestamp: msg.FiredAt, Headers: headers, Body: msg.Body,
	}); err != nil {
		s.t.Fatal(err)
	}
}

// WaitEvent returns the entity (the payload's member key, e.g. "reservation")
// of the next event on sagittarius-a of type typ for which match holds (nil
// matches any), in the order published. Events it passes over are kept for
// later calls. It fails the test after Timeout.
func (s *Service) WaitEvent(typ, key string, match func(json.RawMessage) bool) json.RawMessage {
	s.t.Helper()
	var entity json.RawMessage
	s.WaitMessage(typ, func(d amqp.Delivery) bool {
		var payload map[string]json.RawMessage
		if err := json.Unmarshal(d.Body, &payload); err != nil {
			s.t.Fatalf("event %s: %v", typ, err)
		}
		entity = payload[key]
		return match == nil || match(entity)
	})
	return entity
}

// WaitMessage is WaitEvent for a test of the message itself (its AMQP
// properties and headers, e.g. correlation_id): it returns the next delivery
// of type typ for which match holds (nil matches any).
func (s *Service) WaitMessage(typ string, match func(amqp.Delivery) bool) amqp.Delivery {
	s.t.Helper()
	take := func(d amqp.Delivery) bool { return d.Type == typ && (match == nil || match(d)) }
	for i, d := range s.seen {
		if take(d) {
			s.seen = append(s.seen[:i], s.seen[i+1:]...)
			return d
		}
	}
	timeout := time.After(Timeout)
	for {
		select {
		case d := <-s.events:
			if take(d) {
				return d
			}
			s.seen = append(s.seen, d)
		case <-timeout:
			s.t.Fatalf("no %s event within %v", typ, Timeout)
		}
	}
}

// CountEvents takes every event of type typ seen so far or arriving within
// wait, and returns how many there were; events of other types are kept.
// After a WaitEvent, CountEvents(typ, d) == 0 proves that no second event
// of that type followed within d (a redelivery was not handled twice).
func (s *Service) CountEvents(typ string, wait time.Duration) int {
	n := 0
	var keep []amqp.Delivery
	for _, d := range s.seen {
		if d.Type == typ {
			n++
		} else {
			keep = append(keep, d)
		}
	}
	s.seen = keep
	deadline := time.After(wait)
	for {
		select {
		case d := <-s.events:
			if d.Type == typ {
				n++
			} else {
				s.seen = append(s.seen, d)
			}
		case <-deadline:
			return n
		}
	}
}

// Do sends a request to the service, with body as JSON unless empty, and
// headers as name, value pairs. It sends a staff token of Issuer unless
// headers set Authorization ("" sends none). It returns the status and the body, or 0 and
// nil when the request could not be sent (the service is not listening).
func (s *Service) Do(method, path, body string, headers ...string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+s.Issuer.Staff())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// GetJSON GETs path, fails the test unless the answer is 200, and decodes the
// body into v.
func (s *Service) GetJSON(path string, v any) {
	s.t.Helper()
	code, body := s.Do("GET", path, "")
	if code != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
}

// Eventually polls cond every 50 ms and fails the test with "not <what>"
// when it does not hold within Timeout.
func (s *Service) Eventually(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("not %s within %v", what, Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
