package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestCommandsFollowLinks runs the commands against the real failed-messages
// API on a real database, behind a gateway-like root: every request is found
// by following links from "/".
func TestCommandsFollowLinks(t *testing.T) {
	db := testinfra.NewDatabase(t)
	ctx := context.Background()
	if err := eventbus.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := failedmsg.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := failedmsg.NewStore(db)
	keep := func(id, reason string, body string) {
		h := amqp.Table{eventbus.HeaderDeadReason: reason, eventbus.HeaderAttempt: int64(1), eventbus.HeaderDeadAt: eventbus.FormatFiredAt(time.Now())}
		dl := eventbus.ReadDeadLetter(id, "sales.orders.order_placed", "sales.orders", "application/json", "", time.Time{}, h, []byte(body), time.Now())
		if _, err := store.Keep(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	good := uuid.NewString()
	keep(good, "permanent: order 42 unknown", `{"uuid":"`+good+`","fired_at":"2026-11-22T10:00:00.000Z","order":{"id":"42"}}`)
	poison := uuid.NewString()
	keep(poison, "malformed event: payload is not a JSON object", `not json`)

	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	api := hal.MustBase(srv.URL).Join("payments", "v1")
	rt := httpkit.NewRouter()
	contracts.HandleRoutes(rt, failedmsg.NewAPI(failedmsg.NewKeeper(db, nil, nil), api, nil, false).Routes())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		hal.Write(w, r, 200, map[string]any{"_links": hal.Links{"self": hal.To(srv.URL + "/"), "payments": hal.To(api.Href())}})
	})
	mux.HandleFunc("GET /payments/v1", func(w http.ResponseWriter, r *http.Request) {
		hal.Write(w, r, 200, map[string]any{"_links": hal.Links{"self": hal.To(api.Href()), failedmsg.Rel: failedmsg.RootLink(api)}})
	})
	mux.Handle("/payments/", http.StripPrefix("/payments", rt))
	srv.Config.Handler = mux

	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, "--gateway", srv.URL), func(string) string { return "" }, &out)
		return out.String(), err
	}
	out, err := cli("list", "payments")
	if err != nil || !strings.Contains(out, "MALFORMED: payload is not a JSON object") || !strings.Contains(out, "page 1 of 2 messages") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	ms, _, err := store.List(ctx, failedmsg.Filter{}, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, m := range ms {
		ids[m.MessageID] = m.ID
	}
	out, err = cli("groups", "payments")
	if err != nil || !strings.Contains(out, "2 groups") {
		t.Fatalf("groups: %v\n%s", err, out)
	}
	out, err = cli("show", "payments", ids[good])
	if err != nil || !strings.Contains(out, `"id": "42"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err = cli("retry", "payments", ids[poison]); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("retry of a poison message: %v", err)
	}
	out, err = cli("archive", "payments", ids[poison])
	if err != nil || !strings.Contains(out, "archived") {
		t.Fatalf("archive: %v\n%s", err, out)
	}
	out, err = cli("list", "payments", "--status", "archived")
	if err != nil || !strings.Contains(out, ids[poison]) || strings.Contains(out, ids[good]) {
		t.Fatalf("list --status archived: %v\n%s", err, out)
	}
	out, err = cli("retry", "payments", "--group", ms[0].Fingerprint)
	if ms[0].MessageID != good {
		out, err = cli("retry", "payments", "--group", ms[1].Fingerprint)
	}
	if err != nil || !strings.Contains(out, "retry operation") || !strings.Contains(out, "1 messages") {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	// --wait polls the operation until it completes (here completed by
	// hand: the keeper, which carries operations out, is not running).
	go func() {
		for n := 0; n < 2; time.Sleep(20 * time.Millisecond) { // the earlier operation and this one
			_ = db.Get(&n, `SELECT COUNT(*) FROM failed_message_retries`)
		}
		time.Sleep(200 * time.Millisecond)
		_, _ = db.Exec(`UPDATE failed_message_retry_items SET outcome = 'republished', detail = 'sent'`)
		_, _ = db.Exec(`UPDATE failed_message_retries SET status = 'completed', done = total, succeeded = total`)
	}()
	out, err = cli("retry", "payments", ids[good], "--wait", "--poll", "50ms")
	if err != nil || !strings.Contains(out, "running: 0/1 done") || !strings.Contains(out, "completed: 1/1 done, 1 republished, 0 failed") {
		t.Fatalf("retry --wait: %v\n%s", err, out)
	}
	out, err = cli("actions", "payments")
	if err != nil || !strings.Contains(out, "retry") || !strings.Contains(out, "archive") || !strings.Contains(out, failedmsg.ActorPlaceholder) {
		t.Fatalf("actions: %v\n%s", err, out)
	}
	if _, err := cli("list", "payments", "--status", "lost"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad filter: %v", err)
	}
	if _, err := cli("list", "nowhere"); err == nil {
		t.Fatal("an unknown service gave no error")
	}
}
