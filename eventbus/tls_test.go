package eventbus_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestAMQPS: with an amqps:// URL and Config.CAFile the bus connects over
// TLS (the broker reports the connection as ssl), and a broker whose
// certificate another CA signed is refused with a certificate error.
func TestAMQPS(t *testing.T) {
	ca := testinfra.NewTestCA(t, "bus test CA")
	amqpsURL, node := testinfra.StartRabbitNodeTLS(t, ca)

	bus := startBus(t, eventbus.Config{URL: amqpsURL, Service: "test.widgets", CAFile: ca.CAFile,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for bus.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no connection over amqps: %v", bus.Healthy())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var conns []struct {
		SSL              bool           `json:"ssl"`
		SSLProtocol      string         `json:"ssl_protocol"`
		ClientProperties map[string]any `json:"client_properties"`
	}
	found := false
	for !found && time.Now().Before(deadline) {
		testinfra.ManagementGetNode(t, node, "/api/connections", &conns)
		for _, c := range conns {
			if c.ClientProperties["connection_name"] == "test.widgets" {
				found = true
				if !c.SSL || c.SSLProtocol == "" {
					t.Fatalf("the broker reports the bus's connection as ssl=%v protocol %q", c.SSL, c.SSLProtocol)
				}
				t.Logf("broker: connection over %s", c.SSLProtocol)
			}
		}
		time.Sleep(500 * time.Millisecond) // the management API lists new connections after a moment
	}
	if !found {
		t.Fatalf("the broker lists no connection named test.widgets: %+v", conns)
	}

	// A client trusting another CA refuses the broker.
	other := testinfra.NewTestCA(t, "another CA")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, other.CAFile))
	_, err := amqp.DialTLS(amqpsURL, &tls.Config{RootCAs: pool})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial with another CA: %v, want x509.UnknownAuthorityError", err)
	}
	// So does the bus, and it says why.
	logs := &testinfra.SyncBuffer{}
	wrong, err := eventbus.New(eventbus.Config{URL: amqpsURL, Service: "test.consumer", CAFile: other.CAFile,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wrong.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !strings.Contains(logs.String(), "certificate signed by unknown authority") {
		if time.Now().After(deadline) {
			t.Fatalf("the bus with another CA logged: %s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if wrong.Healthy() == nil {
		t.Fatal("the bus trusting another CA is connected")
	}
	if _, err := eventbus.New(eventbus.Config{URL: node.AMQPURL, Service: "test.widgets", CAFile: ca.CAFile}); err == nil {
		t.Fatal("CAFile with an amqp:// URL accepted")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
