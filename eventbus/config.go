package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// QueueType is the RabbitMQ queue type of the service's queues.
type QueueType string

// Queue types: classic for a single node, quorum for a cluster (replicated,
// redeliveries counted and capped by DeliveryLimit).
const (
	QueueClassic QueueType = "classic"
	QueueQuorum  QueueType = "quorum"
)

// Config configures a Bus. The zero values of the optional fields are
// replaced by the defaults documented on each field.
type Config struct {
	// URL of the broker, e.g. amqp://sales.orders:secret@127.0.0.1:5672/sagittarius,
	// or a comma-separated list of the URLs of the nodes of one cluster (the
	// same vhost and credentials on each). With several, the bus connects to
	// one chosen at random (so that instances spread over the nodes) and, when
	// that connection is lost, tries the next ones in turn. Required.
	URL string
	// Service is the service name, domain-name.subdomain-name: its queue name
	// and the app_id of everything it publishes. Required.
	Service string
	// QueueType of the service's queues. Default classic. Changing it for an
	// existing queue is refused by the broker: delete the queues first.
	QueueType QueueType
	// Prefetch is how many unacknowledged deliveries the broker sends ahead. Default 200.
	Prefetch int
	// Concurrency is how many handlers run at once. Default 16. With more
	// than one, events are handled in parallel and so not necessarily in the
	// order they were published: handlers must tolerate that (they must
	// already tolerate redeliveries and retries, which reorder too).
	Concurrency int
	// MaxAttempts is how many times a failing handler runs before its message
	// goes to the dead-letter queue. Default 5. Attempts of a HandleTx handler
	// while its database does not answer do not count.
	MaxAttempts int
	// RetryDelays are the waits before attempt 2, 3, …; the last one repeats.
	// Each distinct delay is one retry queue. Default 1s, 5s, 30s.
	RetryDelays []time.Duration
	// DeliveryLimit caps broker redeliveries on quorum queues (a handler that
	// crashes its process every time). Default 20. Ignored for classic queues.
	DeliveryLimit int
	// ReconnectMin and ReconnectMax bound the exponential reconnect backoff.
	// Defaults 200ms and 10s.
	ReconnectMin, ReconnectMax time.Duration
	// DrainTimeout bounds how long Run waits for handlers in flight when its
	// context is cancelled. Default 30s.
	DrainTimeout time.Duration
	// Logger receives connection and failure logs. Default slog.Default().
	Logger *slog.Logger
	// Observer, if set, counts published and consumed events (metrics; see
	// Observer). Nil costs nothing.
	Observer Observer
	// TracerProvider, if set, records the bus's spans (see trace.go): the
	// publish of every event and the processing of every handled delivery.
	// Nil records none.
	TracerProvider trace.TracerProvider
	// CAFile (AMQP_CA_FILE) is a PEM file of the certificate authorities
	// trusted to sign the broker's certificate when URL is amqps://; empty:
	// the system's. The broker's certificate must name the URL's host.
	CAFile string
}

func (c Config) withDefaults() Config {
	if c.QueueType == "" {
		c.QueueType = QueueClassic
	}
	if c.Prefetch == 0 {
		c.Prefetch = 200
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if len(c.RetryDelays) == 0 {
		c.RetryDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	}
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = 20
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 200 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 10 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field of c (after defaults).
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("eventbus: Config.URL is required")
	}
	for _, n := range c.nodeURLs() {
		if u, err := url.Parse(n); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
			return fmt.Errorf("eventbus: Config.URL must be an amqp:// or amqps:// URL, or a comma-separated list of them")
		}
	}
	if err := ValidateServiceName(c.Service); err != nil {
		return fmt.Errorf("eventbus: Config.Service: %w", err)
	}
	if c.QueueType != QueueClassic && c.QueueType != QueueQuorum {
		return fmt.Errorf("eventbus: Config.QueueType %q: want classic or quorum", c.QueueType)
	}
	if c.Prefetch < 1 || c.Prefetch > 65535 {
		return fmt.Errorf("eventbus: Config.Prefetch %d: want 1..65535", c.Prefetch)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("eventbus: Config.Concurrency %d: want at least 1", c.Concurrency)
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("eventbus: Config.MaxAttempts %d: want at least 1", c.MaxAttempts)
	}
	for _, d := range c.RetryDelays {
		if d < time.Millisecond {
			return fmt.Errorf("eventbus: Config.RetryDelays: %v is below 1ms", d)
		}
	}
	if c.CAFile != "" && !strings.HasPrefix(c.URL, "amqps://") {
		return errors.New("eventbus: Config.CAFile is for an amqps:// URL")
	}
	if c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin {
		return fmt.Errorf("eventbus: Config.ReconnectMin/Max: want 0 < min <= max")
	}
	return nil
}

// retryExchange is the service's own direct exchange for retries and dead
// letters. Messages sent through it reach only this service's queues.
func (c Config) retryExchange() string { return c.Service + ".retry" }

// deadLetterQueue is the service's dead-letter queue.
func (c Config) deadLetterQueue() string { return c.Service + ".dead-letter" }

// retryQueue is the delay-tier queue for delay d.
func (c Config) retryQueue(d time.Duration) string {
	return fmt.Sprintf("%s.retry.%d", c.Service, d.Milliseconds())
}

// retryDelay returns the wait before the next attempt after attempt failed.
func (c Config) retryDelay(attempt int) time.Duration {
	i := attempt - 1
	if i >= len(c.RetryDelays) {
		i = len(c.RetryDelays) - 1
	}
	if i < 0 {
		i = 0
	}
	return c.RetryDelays[i]
}
