package eventbus

import "sync/atomic"

// Stats are counters since the Bus was created.
type Stats struct {
	Published    uint64 // messages confirmed by the broker (events, retries and dead letters)
	Handled      uint64 // deliveries acked after their handler succeeded (including duplicates the inbox skipped)
	Duplicates   uint64 // redelivered events acked without running the handler (inbox)
	Unhandled    uint64 // deliveries of types with no handler, acked unread
	Retried      uint64 // failed deliveries sent to a retry queue
	DeadLettered uint64 // deliveries sent to the dead-letter queue
	Reconnects   uint64 // connections lost and re-established
	Resubscribes uint64 // consumers cancelled by the broker and subscribed again on the same connection
	PubRenewals  uint64 // publishing channels replaced after the broker nacked a message on them
}

type counters struct {
	published, handled, duplicates, unhandled, retried, deadLettered, reconnects, resubscribes, pubChannelRenewals atomic.Uint64
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (b *Bus) Stats() Stats {
	c := &b.stats
	return Stats{
		Published:    c.published.Load(),
		Handled:      c.handled.Load(),
		Duplicates:   c.duplicates.Load(),
		Unhandled:    c.unhandled.Load(),
		Retried:      c.retried.Load(),
		DeadLettered: c.deadLettered.Load(),
		Reconnects:   c.reconnects.Load(),
		Resubscribes: c.resubscribes.Load(),
		PubRenewals:  c.pubChannelRenewals.Load(),
	}
}
