package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// URL of the broker with the platform's vhost, e.g.
	// amqp://user:pw@127.0.0.1:5672/sagittarius. The user must be allowed to
	// declare the audit queue and bind it to sagittarius-a.
	URL string
	// Queue is the audit queue; default audit.conformance-<random>. It is
	// exclusive and auto-deleted: it disappears with the audit.
	Queue string
	// Max stops the watch after this many messages (Done is closed); 0: no limit.
	Max int
}

// Report is what a watch saw.
type Report struct {
	Messages   int            // messages checked
	Types      map[string]int // messages per type property
	Violations []Violation
}

// TypeCounts returns the types seen with their counts, sorted by type.
func (r Report) TypeCounts() []string {
	out := make([]string, 0, len(r.Types))
	for t, n := range r.Types {
		out = append(out, fmt.Sprintf("%s %d", t, n))
	}
	sort.Strings(out)
	return out
}

// Watcher watches the live traffic on sagittarius-a. Stop ends it.
type Watcher struct {
	conn   *amqp.Connection
	queue  string
	done   chan struct{} // closed when Max messages were checked
	ended  chan struct{} // closed when the consumer goroutine returns
	mu     sync.Mutex
	report Report
	err    error
}

// Watch declares the audit queue, binds it to sagittarius-a and checks
// every message that reaches it with rules, in the background, until Stop
// (or Max messages). It returns once the queue is bound: every event
// published from then on is seen.
func Watch(ctx context.Context, opts WatchOptions, rules Rules) (*Watcher, error) {
	if opts.Queue == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Queue = "audit.conformance-" + hex.EncodeToString(b)
	}
	conn, err := amqp.DialConfig(opts.URL, amqp.Config{Properties: amqp.Table{"connection_name": opts.Queue}})
	if err != nil {
		return nil, fmt.Errorf("conformance: connect: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	fail := func(err error) (*Watcher, error) {
		conn.Close()
		return nil, fmt.Errorf("conformance: %w", err)
	}
	if err := ch.ExchangeDeclarePassive(eventbus.Exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fail(fmt.Errorf("exchange %s: %w", eventbus.Exchange, err))
	}
	if _, err := ch.QueueDeclare(opts.Queue, false, true, true, false, nil); err != nil {
		return fail(fmt.Errorf("declare %s: %w", opts.Queue, err))
	}
	if err := ch.QueueBind(opts.Queue, "", eventbus.Exchange, false, nil); err != nil {
		return fail(fmt.Errorf("bind %s: %w", opts.Queue, err))
	}
	deliveries, err := ch.ConsumeWithContext(ctx, opts.Queue, opts.Queue, true, true, false, false, nil)
	if err != nil {
		return fail(fmt.Errorf("consume %s: %w", opts.Queue, err))
	}
	w := &Watcher{conn: conn, queue: opts.Queue, done: make(chan struct{}), ended: make(chan struct{}),
		report: Report{Types: map[string]int{}}}
	go func() {
		defer close(w.ended)
		for d := range deliveries {
			vs := rules.Message(FromDelivery(d))
			w.mu.Lock()
			w.report.Messages++
			w.report.Types[d.Type]++
			w.report.Violations = append(w.report.Violations, vs...)
			n := w.report.Messages
			w.mu.Unlock()
			if opts.Max > 0 && n == opts.Max {
				close(w.done)
			}
		}
	}()
	return w, nil
}

// Queue returns the audit queue's name.
func (w *Watcher) Queue() string { return w.queue }

// Done is closed once Max messages were checked (never when Max is 0).
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Seen returns how many messages were checked so far.
func (w *Watcher) Seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.report.Messages
}

// Stop closes the connection (the broker deletes the audit queue) and
// returns the report. Messages still in flight are not checked.
func (w *Watcher) Stop() Report {
	err := w.conn.Close()
	<-w.ended
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		w.err = err
	}
	r := w.report
	r.Violations = append([]Violation(nil), r.Violations...)
	Sort(r.Violations)
	return r
}
