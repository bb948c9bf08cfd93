package eventbus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

type thing struct {
	ID string `json:"id"`
}

// A claim locks the rows of its batch and no others: while one batch is
// published (its transaction open), the next claim gets the following rows
// instead of nothing. This is what lets a relay commit one batch while it
// publishes the next, and two instances of a service relay at once.
func TestAClaimLocksOnlyItsBatch(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := testinfra.NewDatabase(t)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	made := MustEventType[thing]("test.things", "thing_made", "thing")
	b, err := New(Config{URL: url, Service: "test.things", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publishes(made); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(20 * time.Second); b.Healthy() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("bus did not connect")
		}
	}

	tx := db.MustBeginTx(ctx, nil)
	var ids []string
	for i := range 10 {
		m, err := made.New(ctx, thing{ID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if err := Enqueue(ctx, tx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := NewRelay(db, b, RelayConfig{BatchSize: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.publishBatch(ctx)
	if err != nil || first == nil {
		t.Fatalf("first claim: %v, %v", first, err)
	}
	t.Cleanup(func() { _ = first.tx.Rollback() }) // on failure: release the locks before the database is dropped
	second, err := r.publishBatch(ctx)            // while the first is not committed
	if err != nil {
		t.Fatal(err)
	}
	if second != nil {
		t.Cleanup(func() { _ = second.tx.Rollback() })
	}
	if second == nil {
		t.Fatal("second claim found nothing: the first claim locked every pending row")
	}
	for i, bt := range []*batch{first, second} {
		for j, row := range bt.rows {
			if want := ids[3*i+j]; row.UUID != want {
				t.Errorf("batch %d row %d is %s, want %s (enqueue order)", i+1, j, row.UUID, want)
			}
		}
	}
	for _, bt := range []*batch{second, first} { // commits in any order
		if n, err := bt.finish(ctx); err != nil || n != 3 {
			t.Fatalf("finish: %d, %v", n, err)
		}
	}
	var pending int
	if err := db.Get(&pending, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); err != nil || pending != 4 {
		t.Fatalf("%d rows pending (%v), want 4", pending, err)
	}
}
