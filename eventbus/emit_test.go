package eventbus_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// TestEmitWritesTheEventInTheTransaction: an emitted event is in the outbox
// once its transaction commits, complete (type, app_id, the entity under its
// key, the correlation id of ctx), and absent when it rolls back.
func TestEmitWritesTheEventInTheTransaction(t *testing.T) {
	db := migratedDB(t)
	ctx := eventbus.WithCorrelationID(context.Background(), "req-42")

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Emit(ctx, tx, widgetMade, newWidget(1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox`); n != 0 {
		t.Fatalf("%d outbox rows after a rollback, want 0", n)
	}

	tx, err = db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Emit(ctx, tx, widgetMade, newWidget(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var row struct {
		Type    string `db:"type"`
		AppID   string `db:"app_id"`
		Headers string `db:"headers"`
		Body    []byte `db:"body"`
	}
	if err := db.Get(&row, `SELECT type, app_id, headers, body FROM eventbus_outbox`); err != nil {
		t.Fatal(err)
	}
	if row.Type != widgetMade.Type() || row.AppID != widgetMade.Info().Service {
		t.Errorf("row type %q app_id %q, want %q %q", row.Type, row.AppID, widgetMade.Type(), widgetMade.Info().Service)
	}
	var w widget
	if err := json.Unmarshal(decodeBody(t, row.Body)["widget"], &w); err != nil || w.N != 2 {
		t.Errorf("entity %+v (%v), want widget 2", w, err)
	}
	var headers map[string]any
	if err := json.Unmarshal([]byte(row.Headers), &headers); err != nil || headers[eventbus.HeaderCorrelationID] != "req-42" {
		t.Errorf("headers %s (%v): want the correlation id req-42", row.Headers, err)
	}

	// An EventType not made by NewEventType is refused, and nothing is written.
	tx, err = db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := eventbus.Emit(ctx, tx, eventbus.EventType[widget]{}, newWidget(3)); err == nil {
		t.Error("Emit of a zero EventType succeeded")
	}
}
