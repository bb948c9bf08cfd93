package eventbus

import (
	"fmt"
	"slices"
	"testing"
)

type ackCall struct {
	tag      uint64
	multiple bool
}

type fakeAcker struct{ calls []ackCall }

func (f *fakeAcker) Ack(tag uint64, multiple bool) error {
	f.calls = append(f.calls, ackCall{tag, multiple})
	return nil
}

func TestUnhandledAcksNeverCoverHeldTags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(a *unhandledAcks)
		want  []ackCall
	}{
		{
			name: "nothing held: one multiple ack",
			steps: func(a *unhandledAcks) {
				a.add(1)
				a.add(2)
				a.add(3)
				a.flush()
			},
			want: []ackCall{{3, true}},
		},
		{
			name: "a single pending tag is acked alone",
			steps: func(a *unhandledAcks) {
				a.add(7)
				a.flush()
			},
			want: []ackCall{{7, false}},
		},
		{
			name: "held tag in the middle: multiple below it, the rest one by one",
			steps: func(a *unhandledAcks) {
				a.add(1)
				a.add(2)
				a.handOut(3)
				a.add(4)
				a.add(5)
				a.flush()
			},
			want: []ackCall{{2, true}, {4, false}, {5, false}},
		},
		{
			name: "held tag settled before the flush no longer blocks",
			steps: func(a *unhandledAcks) {
				a.add(1)
				a.handOut(2)
				a.add(3)
				a.add(4)
				a.settled(2)
				a.flush()
			},
			want: []ackCall{{4, true}},
		},
		{
			name: "held first: nothing multiple",
			steps: func(a *unhandledAcks) {
				a.handOut(1)
				a.add(2)
				a.add(3)
				a.flush()
			},
			want: []ackCall{{2, false}, {3, false}},
		},
		{
			name: "max pending flushes by itself",
			steps: func(a *unhandledAcks) {
				for tag := uint64(1); tag <= 4; tag++ {
					a.add(tag)
				}
				a.add(5)
			},
			want: []ackCall{{4, true}},
		},
		{
			name: "flush with nothing pending acks nothing",
			steps: func(a *unhandledAcks) {
				a.handOut(1)
				a.flush()
			},
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAcker{}
			a := newUnhandledAcks(f, 4)
			tc.steps(a)
			if !slices.Equal(f.calls, tc.want) {
				t.Fatalf("acks %v, want %v", f.calls, tc.want)
			}
		})
	}
}

func TestUnhandledAcksReportsTheFirstPending(t *testing.T) {
	a := newUnhandledAcks(&fakeAcker{}, 3)
	got := fmt.Sprint(a.add(1), a.add(2), a.add(3), a.add(4))
	// The third add flushes (max 3); the fourth starts a new batch.
	if got != "true false false true" {
		t.Fatalf("first = %s", got)
	}
}
