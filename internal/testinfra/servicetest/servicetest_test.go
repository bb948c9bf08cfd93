package servicetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
)

const service = "test.echo"

// echo is a minimal service: GET /health, GET /v1/echoes/count, and for
// every test.pings.ping event on its queue it publishes test.echo.pong with
// the same body. It fails unless its broker user is refused a queue that is
// not its own (the production permissions).
func echo(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	conn, err := amqp.Dial(getenv("AMQP_URL"))
	if err != nil {
		return err
	}
	defer conn.Close()
	probe, err := conn.Channel()
	if err != nil {
		return err
	}
	var amqpErr *amqp.Error
	if _, err := probe.QueueDeclare("sales.orders", true, false, false, false, nil); !errors.As(err, &amqpErr) || amqpErr.Code != amqp.AccessRefused {
		return fmt.Errorf("declaring another service's queue: got %v, want ACCESS_REFUSED", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(service, true, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.QueueBind(service, "", eventbus.Exchange, false, nil); err != nil {
		return err
	}
	deliveries, err := ch.Consume(service, "", true, false, false, false, nil)
	if err != nil {
		return err
	}
	count := make(chan int, 1)
	count <- 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v1/echoes/count", func(w http.ResponseWriter, r *http.Request) {
		n := <-count
		count <- n
		json.NewEncoder(w).Encode(map[string]int{"count": n})
	})
	srv := &http.Server{Addr: getenv("HTTP_ADDR"), Handler: mux}
	go srv.ListenAndServe()
	defer srv.Close()
	fmt.Fprintln(stdout, "echo: up, greeting", getenv("GREETING"))
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("deliveries closed")
			}
			if d.Type != "test.pings.ping" {
				continue
			}
			count <- <-count + 1
			if err := ch.PublishWithContext(ctx, eventbus.Exchange, "", false, false,
				amqp.Publishing{Type: service + ".pong", AppId: service, Body: d.Body}); err != nil {
				return err
			}
		}
	}
}

func TestStart(t *testing.T) {
	s := servicetest.Start(t, echo, service, "GREETING=hello")
	msg := func(id string) eventbus.Message {
		return eventbus.Message{ID: id, Type: "test.pings.ping", AppID: "test.pings", FiredAt: time.Now(),
			Body: []byte(`{"uuid":"` + id + `","ping":{"id":"` + id + `"}}`)}
	}
	s.Publish(msg("a"), nil)
	s.Publish(msg("b"), nil)
	// WaitEvent takes the matching event and keeps the one it passed over.
	b := s.WaitEvent(service+".pong", "ping", func(e json.RawMessage) bool { return string(e) == `{"id":"b"}` })
	if string(b) != `{"id":"b"}` {
		t.Fatalf("pong b: %s", b)
	}
	if a := s.WaitEvent(service+".pong", "ping", nil); string(a) != `{"id":"a"}` {
		t.Fatalf("pong a: %s", a)
	}
	if n := s.CountEvents(service+".pong", 300*time.Millisecond); n != 0 {
		t.Fatalf("%d more pongs", n)
	}
	// The observer sees the pings too.
	if n := s.CountEvents("test.pings.ping", 0); n != 2 {
		t.Fatalf("observed %d pings, want 2", n)
	}
	var c struct{ Count int }
	s.GetJSON("/v1/echoes/count", &c)
	if c.Count != 2 {
		t.Fatalf("count %d", c.Count)
	}
	if code, _ := s.Do("GET", "/nowhere", ""); code != http.StatusNotFound {
		t.Fatalf("GET /nowhere: %d", code)
	}
	s.Eventually("logging its environment", func() bool { return len(s.Logs.String()) > 0 })
	if got := s.Logs.String(); got != "echo: up, greeting hello\n" {
		t.Fatalf("logs %q", got)
	}
}
