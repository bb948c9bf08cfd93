package eventbus

import (
	"math"
	"sync"
	"time"
)

// Every queue receives every event, and most of them no handler of the
// service wants (in the order saga, 23 deliveries of 30). Acking each of
// them is a frame the service writes and the broker processes. The reader
// acks them in batches instead, with one basic.ack multiple=true.
//
// A multiple ack of tag T acks every unacknowledged delivery of the channel
// up to T, so it must never cover a delivery a worker still holds: that one
// would be lost if its handler then failed or the service died. The
// unhandledAcks tracks the tags handed to workers and not yet settled, and
// acks multiple only below the lowest of them. An unhandled delivery behind
// a handler still running is acked on its own when its batch is flushed, so
// a slow handler never holds unhandled deliveries against the prefetch.

// unhandledFlushAfter bounds how long an unhandled delivery waits for its
// batch's ack.
const unhandledFlushAfter = 10 * time.Millisecond

// acker is the part of amqp.Channel the batcher uses (a fake in tests).
type acker interface {
	Ack(tag uint64, multiple bool) error
}

// unhandledAcks batches the acks of one channel's unhandled deliveries. Its
// methods are called by the channel's reader goroutine, except settled,
// which workers call.
type unhandledAcks struct {
	ch  acker
	max int // flush when this many acks are pending

	mu       sync.Mutex
	inFlight map[uint64]struct{} // tags handed to workers and not yet settled

	pending []uint64 // unhandled tags not yet acked, ascending (reader only)
}

func newUnhandledAcks(ch acker, max int) *unhandledAcks {
	return &unhandledAcks{ch: ch, max: max, inFlight: make(map[uint64]struct{})}
}

// handOut records that a worker now holds the delivery with tag. Call it
// before handing the delivery over.
func (a *unhandledAcks) handOut(tag uint64) {
	a.mu.Lock()
	a.inFlight[tag] = struct{}{}
	a.mu.Unlock()
}

// settled records that the delivery with tag was acked or nacked.
func (a *unhandledAcks) settled(tag uint64) {
	a.mu.Lock()
	delete(a.inFlight, tag)
	a.mu.Unlock()
}

// add queues the ack of an unhandled delivery and reports whether it is the
// first pending one (the caller then starts its flush timer). When max acks
// are pending it flushes them.
func (a *unhandledAcks) add(tag uint64) (first bool) {
	a.pending = append(a.pending, tag)
	if len(a.pending) >= a.max {
		a.flush()
		return false
	}
	return len(a.pending) == 1
}

// flush acks every pending tag: those below the lowest tag a worker holds
// with one multiple ack, the others one by one. Tags are only ever added
// by the caller's goroutine, so the lowest held tag can only grow between
// the check and the ack: the multiple ack never covers a held delivery.
func (a *unhandledAcks) flush() {
	if len(a.pending) == 0 {
		return
	}
	low := uint64(math.MaxUint64)
	a.mu.Lock()
	for t := range a.inFlight {
		low = min(low, t)
	}
	a.mu.Unlock()
	n := 0 // pending tags below low
	for n < len(a.pending) && a.pending[n] < low {
		n++
	}
	switch {
	case n == 1:
		_ = a.ch.Ack(a.pending[0], false)
	case n > 1:
		_ = a.ch.Ack(a.pending[n-1], true)
	}
	for _, t := range a.pending[n:] {
		_ = a.ch.Ack(t, false)
	}
	a.pending = a.pending[:0]
}
