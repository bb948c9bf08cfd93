package eventbus

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

type thing struct {
	ID string `json:"id"`
}

// A claim locks the rows of its batch and no others: while one relay's
// batch is claimed (its transaction open), another relay's claim gets the
// following rows instead of nothing, in enqueue order.
func TestAClaimLocksOnlyItsBatch(t *testing.T) {
	db := testinfra.NewDatabase(t)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	made := MustEventType[thing]("test.things", "thing_made", "thing")
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
	b, err := New(Config{URL: "amqp://unused/", Service: "test.things"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRelay(db, b, RelayConfig{BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 2 { // two relays, each in its transaction, as PublishPending claims
		tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() }) // holds its locks until the test ends
		rows, err := r.claim(ctx, tx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("claim %d got %d rows, want 3: an earlier claim locked more than its batch", i+1, len(rows))
		}
		for j, row := range rows {
			if want := ids[3*i+j]; row.UUID != want {
				t.Errorf("claim %d row %d is %s, want %s (enqueue order)", i+1, j, row.UUID, want)
			}
		}
	}
}
