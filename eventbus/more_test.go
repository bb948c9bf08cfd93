package eventbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestBusRunsWithLeastPrivilege runs a bus as a user allowed only what the
// provisioning scripts grant a service: configure and read its own queues,
// write to sagittarius-a and its own resources. The shared exchange already
// exists; the bus may not declare it and must check it passively instead.
func TestBusRunsWithLeastPrivilege(t *testing.T) {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	tp := newTap(t, adminURL, "test.external-observer") // declares sagittarius-a as admin

	serviceURL := testinfra.NewServiceUser(t, vhost, "test.widgets")
	var handled atomic.Int32
	b := startBus(t, eventbus.Config{URL: serviceURL, Service: "test.widgets", RetryDelays: []time.Duration{50 * time.Millisecond}, MaxAttempts: 2}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			handled.Add(1)
			return errors.New("always fails: exercises the retry and dead-letter path under least privilege")
		}); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	if err := b.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(1))); err != nil {
		t.Fatalf("Publish as least-privilege user: %v", err)
	}
	waitFor(t, 10*time.Second, "the event at the tap", func() bool { return tp.count() == 1 })
	waitFor(t, 10*time.Second, "retry then dead letter", func() bool { return b.Stats().DeadLettered == 1 })
	if handled.Load() != 2 {
		t.Errorf("handled %d times, want 2", handled.Load())
	}

	// And the user cannot touch what is not its own.
	conn, err := amqp.Dial(serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("test.other", true, false, false, false, nil); err == nil {
		t.Error("least-privilege user declared another service's queue")
	}
	ch, _ = conn.Channel()
	if _, err := ch.Consume("test.external-observer", "", false, false, false, false, nil); err == nil {
		t.Error("least-privilege user consumed another service's queue")
	}
	ch, _ = conn.Channel()
	_ = ch.Confirm(false)
	dc, err := ch.PublishWithDeferredConfirm("", "test.external-observer", false, false, amqp.Publishing{Body: []byte("x")})
	if err == nil && dc.Wait() {
		t.Error("least-privilege user published through the default exchange into another queue")
	}
}

func TestQuorumQueuesRetryAndDeadLetter(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	var tries atomic.Int32
	b := startBus(t, eventbus.Config{URL: url, Service: "test.consumer", QueueType: eventbus.QueueQuorum, MaxAttempts: 3,
		RetryDelays: []time.Duration{50 * time.Millisecond}}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			tries.Add(1)
			return errors.New("no")
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)
	ctx := context.Background()
	if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(1))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "dead letter on quorum queues", func() bool { return b.Stats().DeadLettered == 1 })
	if tries.Load() != 3 {
		t.Errorf("tries = %d, want 3", tries.Load())
	}
	if got := getAll(t, url, b.DeadLetterQueue()); len(got) != 1 {
		t.Errorf("dead-letter queue has %d messages", len(got))
	}
}

// TestShutdownDrainsHandlersInFlight cancels Run while a handler is running:
// Run waits for it, the message is acked, and nothing is redelivered.
func TestShutdownDrainsHandlersInFlight(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	b, err := eventbus.New(eventbus.Config{URL: url, Service: "test.consumer", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished atomic.Bool
	if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
		close(started)
		time.Sleep(500 * time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		finished.Store(true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cancel, done := runUntilHandling(t, url, b, started)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Run returned before the handler in flight finished")
	}
	if b.Stats().Handled != 1 {
		t.Errorf("handled = %d", b.Stats().Handled)
	}
	if n := queueDepth(t, url, "test.consumer"); n != 0 {
		t.Errorf("%d messages back in the queue after a clean shutdown", n)
	}
}
