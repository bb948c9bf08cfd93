package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

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

// The relay's own connection reads at READ COMMITTED, and that session level
// never reaches the pool: after an error, and when the relay stops, the
// connection is closed, not returned. The pool has one connection, so a
// connection returned to it would be the next one handed out.
func TestTheRelaysConnectionNeverReturnsToThePool(t *testing.T) {
	db := testinfra.NewDatabase(t)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	b, err := New(Config{URL: "amqp://unused/", Service: "test.things"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRelay(db, b, RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	level := func(q interface {
		GetContext(context.Context, any, string, ...any) error
	}) string {
		t.Helper()
		var l string
		if err := q.GetContext(ctx, &l, `SELECT @@tx_isolation`); err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, end := range []string{"error", "stop"} {
		boom := errors.New("boom")
		err := r.withConn(ctx, func(conn *sqlx.Conn) error {
			if l := level(conn); l != "READ-COMMITTED" {
				t.Errorf("relay connection at %s, want READ-COMMITTED", l)
			}
			if end == "error" {
				return boom
			}
			return nil
		})
		if end == "error" && !errors.Is(err, boom) {
			t.Fatalf("withConn: %v", err)
		}
		if end == "stop" {
			r.closeConn()
		}
		if l := level(db); l != "REPEATABLE-READ" {
			t.Errorf("after the relay's %s, the pool hands out a connection at %s", end, l)
		}
	}
}
