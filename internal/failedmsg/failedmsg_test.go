package failedmsg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// The service under test: qa.failures handles qa.sources.thing_happened.
// A thing whose mode is "a" or "b" fails permanently while broken is set,
// each mode with its own reason; every successful handling is counted.
const qaService = "qa.failures"

type thing struct {
	ID   string `json:"id"`
	Mode string `json:"mode"`
}

var thingHappened = eventbus.MustEventType[thing]("qa.sources", "thing_happened", "thing")

type qa struct {
	t        *testing.T
	iss      *authtest.Issuer // signs the operator token every request carries
	url      string
	adminURL string
	vhost    string
	env      map[string]string
	broken   atomic.Bool
	mu       sync.Mutex
	handled  map[string]int // thing id -> committed handlings
	stop     func()
	logs     *testinfra.SyncBuffer
	pub      *amqp.Channel
}

type qaAPI struct{}

func (qaAPI) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "failures", Name: qaService, Title: "QA failures", Events: events,
		Routes: []contracts.Route{{Method: "GET", Path: "/v1", ID: "getRoot", Summary: "root", Auth: auth.Anyone(),
			Handler: func(w http.ResponseWriter, r *http.Request) {
				hal.Write(w, r, 200, map[string]any{"_links": hal.Links{"self": hal.To("http://gw.test/failures/v1"),
					failedmsg.Rel: failedmsg.RootLink(hal.MustBase("http://gw.test/failures/v1"))}})
			},
			Responses: []contracts.Response{{Status: 200, Body: map[string]any{}}}}}}
}

func (q *qa) run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "failures", Name: qaService, Addr: "127.0.0.1:0"}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		err := eventbus.HandleTx(p.Bus, p.DB, thingHappened, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[thing]) error {
			if q.broken.Load() {
				switch ev.Entity.Mode {
				case "a":
					return eventbus.Permanent(fmt.Errorf("thing %s: cause A (code %d)", ev.Entity.ID, 4000+len(ev.Entity.ID)))
				case "b":
					return eventbus.Permanent(fmt.Errorf("thing %s refused by B", ev.Entity.ID))
				}
			}
			q.mu.Lock()
			q.handled[ev.Entity.ID]++ // counted before the commit: a rolled-back handling would show as a duplicate
			q.mu.Unlock()
			return nil
		})
		return qaAPI{}, err
	})
}

// startQA runs qa.failures in a fresh vhost and database, broken, with env
// (KEY=VALUE) added to its environment.
func startQA(t *testing.T, env ...string) *qa {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	q := &qa{t: t, adminURL: adminURL, vhost: vhost, handled: map[string]int{}, iss: authtest.NewIssuer(t)}
	q.broken.Store(true)
	q.env = map[string]string{"AMQP_URL": testinfra.NewServiceUser(t, vhost, qaService), "MYSQL_DSN": testinfra.NewDatabaseDSN(t),
		"PUBLIC_BASE_URL": "http://gw.test"}
	for i, kv := 0, q.iss.Env(); i+1 < len(kv); i += 2 {
		q.env[kv[i]] = kv[i+1]
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		q.env[k] = v
	}
	conn, err := amqp.Dial(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if q.pub, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	q.start()
	t.Cleanup(func() {
		if q.stop != nil {
			q.stop()
		}
	})
	return q
}

// start runs the service (again, on the same vhost and database).
func (q *qa) start() {
	t := q.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	q.url = "http://" + addr
	env := map[string]string{"HTTP_ADDR": addr}
	for k, v := range q.env {
		env[k] = v
	}
	q.logs = &testinfra.SyncBuffer{}
	logs := q.logs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.run(ctx, func(k string) string { return env[k] }, logs) }()
	q.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("the service did not stop within 40 s")
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", logs.String())
		}
		q.stop = nil
	}
	q.eventually("healthy", func() bool { c, _ := q.do("GET", "/health", ""); return c == 200 })
}

func (q *qa) restart() {
	q.stop()
	q.start()
}

func (q *qa) publish(th thing) eventbus.Message {
	q.t.Helper()
	msg, err := thingHappened.New(context.Background(), th)
	if err != nil {
		q.t.Fatal(err)
	}
	q.publishMsg(msg)
	return msg
}

func (q *qa) publishMsg(msg eventbus.Message) {
	q.t.Helper()
	h := amqp.Table{}
	for k, v := range msg.Headers {
		h[k] = v
	}
	q.raw(amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: msg.ID, Type: msg.Type,
		AppId: msg.AppID, Timestamp: msg.FiredAt, Headers: h, Body: msg.Body})
}

func (q *qa) raw(p amqp.Publishing) {
	q.t.Helper()
	if err := q.pub.PublishWithContext(context.Background(), eventbus.Exchange, "", false, false, p); err != nil {
		q.t.Fatal(err)
	}
}

func (q *qa) do(method, path, body string, headers ...string) (int, []byte) {
	q.t.Helper()
	req, err := http.NewRequest(method, q.url+path, strings.NewReader(body))
	if err != nil {
		q.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+q.iss.Operator()) // the routes are the operator's
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (q *qa) get(path string, v any) {
	q.t.Helper()
	code, body := q.do("GET", path, "")
	if code != 200 {
		q.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		q.t.Fatalf("GET %s: %v", path, err)
	}
}

func (q *qa) eventually(what string, cond func() bool) {
	q.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			q.t.Fatalf("not %s within 30s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (q *qa) handledCount(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.handled[id]
}

type messages struct {
	Total    int `json:"total"`
	Embedded struct {
		Items []failedmsg.FailedMessage `json:"failed-messages"`
	} `json:"_embedded"`
}

type groups struct {
	Total    int `json:"total"`
	Embedded struct {
		Items []failedmsg.FailedMessageGroup `json:"failed-message-groups"`
	} `json:"_embedded"`
}

func (q *qa) list(query string) messages {
	q.t.Helper()
	var m messages
	q.get("/v1/failed-messages?size=100&"+query, &m)
	return m
}

func (q *qa) awaitRetry(location string) failedmsg.FailedMessageRetry {
	q.t.Helper()
	path := strings.TrimPrefix(location, "http://gw.test/failures")
	var op failedmsg.FailedMessageRetry
	q.eventually("retry operation completed", func() bool {
		q.get(path, &op)
		return op.Status == "completed"
	})
	return op
}

func (q *qa) retry(body string) string {
	q.t.Helper()
	req, _ := http.NewRequest("POST", q.url+"/v1/failed-message-retries", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-"+uuid.NewString()[:8])
	req.Header.Set("Authorization", "Bearer "+q.iss.Operator())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		q.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		q.t.Fatalf("POST retries %s: %d %s", body, resp.StatusCode, b)
	}
	return resp.Header.Get("Location")
}

// deadLetterQueueDepth returns the ready messages of qa.failures.dead-letter.
func (q *qa) deadLetterQueueDepth() int {
	conn, err := amqp.Dial(q.adminURL)
	if err != nil {
		q.t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		q.t.Fatal(err)
	}
	qi, err := ch.QueueDeclarePassive(qaService+".dead-letter", true, false, false, false, amqp.Table{"x-queue-type": "classic"})
	if err != nil {
		q.t.Fatal(err)
	}
	return qi.Messages
}

func TestFailedMessagesKeptGroupedRetriedAndArchived(t *testing.T) {
	q := startQA(t)
	var a, b []eventbus.Message
	for i := range 3 {
		a = append(a, q.publish(thing{ID: fmt.Sprintf("a%d", i), Mode: "a"}))
	}
	for i := range 2 {
		b = append(b, q.publish(thing{ID: fmt.Sprintf("b%d", i), Mode: "b"}))
	}
	q.publish(thing{ID: "fine", Mode: "ok"})

	// Kept from the dead-letter queue, which the keeper drains.
	q.eventually("5 failed messages kept", func() bool { return q.list("").Total == 5 })
	q.eventually("the dead-letter queue drained", func() bool { return q.deadLetterQueueDepth() == 0 })
	if n := q.handledCount("fine"); n != 1 {
		t.Fatalf("the good event was handled %d times", n)
	}
	all := q.list("")
	byMsg := map[string]failedmsg.FailedMessage{}
	for _, m := range all.Embedded.Items {
		byMsg[m.MessageID] = m
	}
	first := byMsg[a[0].ID]
	if first.Status != "unresolved" || !strings.Contains(first.Reason, "cause A") || first.Attempts != 1 || first.DeadLetters != 1 ||
		first.Type != thingHappened.Type() || first.Publisher != "qa.sources" || first.Malformed != "" || !first.Retryable || first.TraceID == "" {
		t.Fatalf("failed message of a0: %+v", first)
	}
	var full failedmsg.FailedMessage
	q.get("/v1/failed-messages/"+first.ID, &full)
	if full.Properties == nil || full.Properties.MessageID != a[0].ID || len(full.Payload) == 0 || full.Headers["x-dead-letter-reason"] == nil {
		t.Fatalf("the message in full: %+v", full)
	}
	if !strings.Contains(string(full.Payload), `"id":"a0"`) {
		t.Fatalf("payload %s", full.Payload)
	}

	// Two failures, two groups; the same failure of different things, one group.
	var gs groups
	q.get("/v1/failed-message-groups", &gs)
	if gs.Total != 2 {
		t.Fatalf("groups: %+v", gs)
	}
	counts := map[string]int{}
	for _, g := range gs.Embedded.Items {
		counts[g.Fingerprint] = g.Count
	}
	fpA, fpB := byMsg[a[0].ID].Fingerprint, byMsg[b[0].ID].Fingerprint
	if fpA == fpB || counts[fpA] != 3 || counts[fpB] != 2 || byMsg[a[2].ID].Fingerprint != fpA {
		t.Fatalf("groups %v; a %s b %s", counts, fpA, fpB)
	}
	if n := q.list("group=" + fpB).Total; n != 2 {
		t.Fatalf("filter by group: %d", n)
	}
	if n := q.list("type=" + thingHappened.Type() + "&status=unresolved").Total; n != 5 {
		t.Fatalf("filter by type and status: %d", n)
	}
	if n := q.list("from=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))).Total; n != 0 {
		t.Fatalf("filter from the future: %d", n)
	}

	// Bad filters and ids.
	for _, bad := range []string{"status=lost", "group=xyz", "from=yesterday", "page=0", "size=1000", "type=Not%20A%20Type",
		"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "status=unresolved&status=archived"} {
		if code, body := q.do("GET", "/v1/failed-messages?"+bad, ""); code != 400 || !strings.Contains(string(body), `"status":400`) {
			t.Errorf("GET ?%s: %d %s", bad, code, body)
		}
	}
	for _, path := range []string{"/v1/failed-messages/not-an-id", "/v1/failed-messages/" + uuid.NewString(),
		"/v1/failed-message-groups/0123456789abcdef", "/v1/failed-message-groups/XYZ", "/v1/failed-message-retries/" + uuid.NewString(),
		"/v1/failed-message-actions/999999", "/v1/failed-message-actions/x"} {
		if code, _ := q.do("GET", path, ""); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	for _, body := range []string{`{}`, `{"ids":["nope"]}`, `{"group":"xyz"}`, `{"ids":["` + first.ID + `"],"group":"` + fpA + `"}`,
		`{"group":"` + fpA + `","batch_size":0}`, `{"group":"` + fpA + `","rate_per_second":0}`, `{"ids":["` + uuid.NewString() + `"]}`} {
		if code, b := q.do("POST", "/v1/failed-message-retries", body); code != 422 {
			t.Errorf("POST %s: %d %s, want 422", body, code, b)
		}
	}
	if code, _ := q.do("POST", "/v1/failed-message-retries", `{"group":"0123456789abcdef"}`); code != 404 {
		t.Errorf("retry of an unknown group: %d", code)
	}

	// Retry of group A while the handler still fails: republished, failed
	// again, back to unresolved with its reason; no loop.
	op := q.awaitRetry(q.retry(`{"group":"` + fpA + `","batch_size":2}`))
	if op.Total != 3 || op.Done != 3 || op.Succeeded != 3 || op.Failed != 0 || len(op.Outcomes) != 3 || op.Outcomes[0].Outcome != "republished" {
		t.Fatalf("retry while broken: %+v", op)
	}
	q.eventually("group A unresolved again after its second failure", func() bool {
		for _, m := range q.list("group=" + fpA).Embedded.Items {
			if m.Status != "unresolved" || m.DeadLetters != 2 || m.Retries != 1 || m.Attempts != 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	for _, m := range q.list("group=" + fpA).Embedded.Items {
		if m.DeadLetters != 2 || !strings.Contains(m.Reason, "cause A") {
			t.Fatalf("after the failed retry: %+v", m)
		}
	}
	for _, m := range a {
		if n := q.handledCount(m.ID); n != 0 {
			t.Fatalf("handled while broken")
		}
	}

	// The cause fixed: retry of the group, handled exactly once, resolved.
	q.broken.Store(false)
	op = q.awaitRetry(q.retry(`{"group":"` + fpA + `"}`))
	if op.Total != 3 || op.Succeeded != 3 || op.Group != fpA || op.Actor != "operator-1" || op.RequestID == "" {
		t.Fatalf("retry after the fix: %+v", op)
	}
	q.eventually("group A resolved", func() bool {
		ms := q.list("group=" + fpA + "&status=resolved")
		return ms.Total == 3
	})
	for i := range a {
		if n := q.handledCount(fmt.Sprintf("a%d", i)); n != 1 {
			t.Fatalf("a%d handled %d times", i, n)
		}
	}
	// A second copy of a retried event (same uuid) is not handled again.
	q.publishMsg(a[0])
	time.Sleep(time.Second)
	if n := q.handledCount("a0"); n != 1 {
		t.Fatalf("a0 handled %d times after a duplicate", n)
	}
	if code, body := q.do("POST", "/v1/failed-message-retries", `{"group":"`+fpA+`"}`); code != 409 {
		t.Fatalf("retry of a resolved group: %d %s", code, body)
	}
	if code, _ := q.do("POST", "/v1/failed-message-retries", `{"ids":["`+first.ID+`"]}`); code != 409 {
		t.Fatalf("retry of a resolved message: %d", code)
	}

	// A poison message: kept, shown with what is wrong, archivable, not retryable.
	poisonID := uuid.NewString()
	q.raw(amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: poisonID,
		Type: thingHappened.Type(), AppId: "qa.sources", Body: []byte(`{"uuid": "not JSON`)})
	var poison failedmsg.FailedMessage
	q.eventually("the poison message kept", func() bool {
		for _, m := range q.list("").Embedded.Items {
			if m.MessageID == poisonID {
				poison = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(poison.Malformed, "not a JSON object") || poison.Retryable || poison.Status != "unresolved" {
		t.Fatalf("poison: %+v", poison)
	}
	var pfull failedmsg.FailedMessage
	q.get("/v1/failed-messages/"+poison.ID, &pfull)
	if pfull.PayloadText != `{"uuid": "not JSON` {
		t.Fatalf("poison payload: %+v", pfull)
	}
	if code, body := q.do("POST", "/v1/failed-message-retries", `{"ids":["`+poison.ID+`"]}`); code != 409 || !strings.Contains(string(body), "malformed") {
		t.Fatalf("retry of a poison message: %d %s", code, body)
	}
	if code, body := q.do("POST", "/v1/failed-message-retries", `{"group":"`+poison.Fingerprint+`"}`); code != 409 {
		t.Fatalf("retry of a poison group: %d %s", code, body)
	}
	if code, body := q.do("PATCH", "/v1/failed-messages/"+poison.ID, `{"status":"archived"}`, "X-Request-Id", "archive-1"); code != 200 ||
		!strings.Contains(string(body), `"status":"archived"`) {
		t.Fatalf("archive: %d %s", code, body)
	}
	if code, body := q.do("PATCH", "/v1/failed-messages/"+poison.ID, `{"payload":{"uuid":"x"}}`); code != 422 || !strings.Contains(string(body), "FAILED_MESSAGES_ALLOW_EDIT") {
		t.Fatalf("PATCH of a payload where editing is off: %d %s", code, body)
	}
	if code, _ := q.do("PATCH", "/v1/failed-messages/"+poison.ID, `{"status":"resolved"}`); code != 422 {
		t.Fatalf("PATCH to resolved: %d", code)
	}
	if code, _ := q.do("PATCH", "/v1/failed-messages/"+poison.ID, `{"status":"unresolved"}`, "If-Match", `"1"`); code != 412 {
		t.Fatalf("PATCH with a stale If-Match: %d", code)
	}
	if code, _ := q.do("PATCH", "/v1/failed-messages/"+first.ID, `{"status":"unresolved"}`); code != 409 {
		t.Fatalf("unarchive of a resolved message: %d", code)
	}
	if code, _ := q.do("PATCH", "/v1/failed-messages/"+uuid.NewString(), `{"status":"archived"}`); code != 404 {
		t.Fatalf("PATCH of an unknown message: %d", code)
	}
	if code, body := q.do("PATCH", "/v1/failed-messages/"+poison.ID, `{"status":"unresolved"}`, "X-Request-Id", "unarchive-1"); code != 200 ||
		!strings.Contains(string(body), `"status":"unresolved"`) {
		t.Fatalf("unarchive: %d %s", code, body)
	}

	// Every action recorded.
	var acts struct {
		Total    int `json:"total"`
		Embedded struct {
			Items []failedmsg.FailedMessageAction `json:"failed-message-actions"`
		} `json:"_embedded"`
	}
	q.get("/v1/failed-message-actions", &acts)
	var got []string
	for _, ac := range acts.Embedded.Items {
		got = append(got, fmt.Sprintf("%s %s %d %s", ac.Action, ac.Target, ac.Count, ac.RequestID))
		if ac.Actor != "operator-1" {
			t.Errorf("actor %q", ac.Actor)
		}
	}
	want := []string{"unarchive " + poison.ID + " 1 unarchive-1", "archive " + poison.ID + " 1 archive-1"}
	if acts.Total != 4 || got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[2], "retry group:"+fpA+" 3 req-") ||
		!strings.HasPrefix(got[3], "retry group:"+fpA+" 3 req-") {
		t.Fatalf("actions:\n%s", strings.Join(got, "\n"))
	}
	var one failedmsg.FailedMessageAction
	q.get(strings.TrimPrefix(acts.Embedded.Items[3].Links.Href("self"), "http://gw.test/failures"), &one)
	if one.Links.Href("retry") == "" {
		t.Fatalf("action: %+v", one)
	}
}

func TestRetryResumesAfterARestart(t *testing.T) {
	q := startQA(t)
	const n = 8
	for i := range n {
		q.publish(thing{ID: fmt.Sprintf("r%d", i), Mode: "a"})
	}
	q.eventually("kept", func() bool { return q.list("").Total == n })
	q.broken.Store(false)
	fp := q.list("").Embedded.Items[0].Fingerprint
	// 2 messages a second, one per batch: about 4 s in all.
	loc := q.retry(`{"group":"` + fp + `","batch_size":1,"rate_per_second":2}`)
	path := strings.TrimPrefix(loc, "http://gw.test/failures")
	var op failedmsg.FailedMessageRetry
	q.eventually("two messages republished", func() bool { q.get(path, &op); return op.Done >= 2 })
	q.stop()

	// Stopped: the operation says exactly how far it got.
	db := testinfra.OpenDatabase(t, q.env["MYSQL_DSN"])
	var st struct {
		Status string `db:"status"`
		Done   int    `db:"done"`
	}
	if err := db.Get(&st, `SELECT status, done FROM failed_message_retries`); err != nil {
		t.Fatal(err)
	}
	var republished int
	if err := db.Get(&republished, `SELECT COUNT(*) FROM failed_message_retry_items WHERE outcome = 'republished'`); err != nil {
		t.Fatal(err)
	}
	if st.Status != "interrupted" || st.Done < 2 || st.Done >= n || republished != st.Done {
		t.Fatalf("after the stop: %+v, %d republished", st, republished)
	}

	// Restarted, it resumes at once.
	q.start()
	done := st.Done
	q.eventually("the operation resumed", func() bool { q.get(path, &op); return op.Done > done && op.Status == "running" })
	q.stop()

	// As if the instance had died mid-batch: the operation still running
	// under another owner's lease, one message marked retrying and its
	// outcome "publishing" (sent or not, unknown). Another start waits for
	// the lease to expire, then sends that message again and the rest.
	var item struct {
		Seq  int    `db:"seq"`
		FMID string `db:"failed_message_id"`
	}
	if err := db.Get(&item, `SELECT seq, failed_message_id FROM failed_message_retry_items WHERE outcome = 'pending' ORDER BY seq LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE failed_messages SET status = 'retrying', retries = retries + 1 WHERE id = '` + item.FMID + `'`,
		`UPDATE failed_message_retry_items SET outcome = 'publishing', retries = 1 WHERE seq = ` + fmt.Sprint(item.Seq),
		`UPDATE failed_message_retries SET status = 'running', owner = 'a-dead-instance', lease_until = ?`,
	} {
		var args []any
		if strings.Contains(stmt, "?") {
			args = append(args, time.Now().UTC().Add(2*time.Second))
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	q.start()
	op = q.awaitRetry(loc)
	if op.Total != n || op.Succeeded != n || op.Restarts != 2 {
		t.Fatalf("after the restarts: %+v", op)
	}
	var resent failedmsg.RetryOutcome
	for _, o := range op.Outcomes {
		if o.FailedMessageID == item.FMID {
			resent = o
		}
	}
	if resent.Outcome != "republished" {
		t.Fatalf("the message in flight at the crash: %+v", resent)
	}
	q.eventually("all resolved", func() bool { return q.list("status=resolved").Total == n })
	for i := range n {
		if c := q.handledCount(fmt.Sprintf("r%d", i)); c != 1 {
			t.Fatalf("r%d handled %d times", i, c)
		}
	}
}

func TestKeepIsIdempotent(t *testing.T) {
	db := testinfra.NewDatabase(t)
	ctx := context.Background()
	if err := eventbus.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := failedmsg.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := failedmsg.Migrate(ctx, db); err != nil {
		t.Fatal(err) // twice: safe at every start
	}
	s := failedmsg.NewStore(db)
	id := uuid.NewString()
	body := []byte(`{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000Z","thing":{"id":"x"}}`)
	dl := func(retries int, at string, reason string) eventbus.DeadLetter {
		h := amqp.Table{eventbus.HeaderDeadReason: reason, eventbus.HeaderAttempt: int64(5), eventbus.HeaderDeadAt: at,
			eventbus.HeaderRetries: int64(retries), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
		return eventbus.ReadDeadLetter(id, "qa.sources.thing_happened", "qa.sources", "application/json", "", time.Time{}, h, body, time.Now())
	}
	first := dl(0, "2026-11-22T10:00:01.000Z", "handler failed 5 times, last error: timeout after 30s")
	for i, want := range []bool{true, false, false} {
		isNew, err := s.Keep(ctx, first)
		if err != nil || isNew != want {
			t.Fatalf("keep #%d: %v %v", i, isNew, err)
		}
	}
	ms, total, err := s.List(ctx, failedmsg.Filter{}, 10, 0)
	if err != nil || total != 1 || ms[0].DeadLetters != 1 || ms[0].Attempts != 5 || ms[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("after a redelivered dead letter: %+v %d %v", ms, total, err)
	}
	// Its second dead-lettering (after retry 1) counts; redelivered, it does not.
	second := dl(1, "2026-11-22T10:05:00.000Z", "handler failed 5 times, last error: timeout after 31s")
	for range 2 {
		if _, err := s.Keep(ctx, second); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.Get(ctx, ms[0].ID)
	if err != nil || m.DeadLetters != 2 || m.Attempts != 10 || m.Fingerprint != ms[0].Fingerprint || !m.LastFailedAt.After(m.FirstFailedAt) {
		t.Fatalf("after the second dead-lettering: %+v %v", m, err)
	}
	if _, err := s.Get(ctx, uuid.NewString()); !errors.Is(err, failedmsg.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestFingerprintGroupsTheSameFailure(t *testing.T) {
	same := [][2]string{
		{"order 0b6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5b: provider unavailable (attempt 3)", "order 9a6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5c: provider unavailable (attempt 12)"},
		{`permanent: product "p-1" unknown`, `permanent: product "p-22" unknown`},
		{"handler panicked: boom\ngoroutine 7 [running]:\nmain.go:12", "handler panicked: boom\ngoroutine 9 [running]:\nmain.go:14"},
		{"lock at 0xc000123456 held", "lock at 0xc000654321 held"},
	}
	for _, p := range same {
		if failedmsg.Fingerprint("t", p[0]) != failedmsg.Fingerprint("t", p[1]) {
			t.Errorf("%q and %q: %q vs %q", p[0], p[1], failedmsg.NormaliseReason(p[0]), failedmsg.NormaliseReason(p[1]))
		}
	}
	if failedmsg.Fingerprint("t", "provider unavailable") == failedmsg.Fingerprint("t", "card declined") {
		t.Error("different reasons share a fingerprint")
	}
	if failedmsg.Fingerprint("a.b.x_happened", "boom") == failedmsg.Fingerprint("a.b.y_happened", "boom") {
		t.Error("different types share a fingerprint")
	}
	if fp := failedmsg.Fingerprint("t", "x"); !failedmsg.ValidFingerprint(fp) || failedmsg.ValidFingerprint("XYZ") {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestEditedPayloadKeepsItsUUID(t *testing.T) {
	q := startQA(t, "FAILED_MESSAGES_ALLOW_EDIT=1")
	msg := q.publish(thing{ID: "e1", Mode: "a"})
	q.eventually("kept", func() bool { return q.list("").Total == 1 })
	m := q.list("").Embedded.Items[0]
	path := "/v1/failed-messages/" + m.ID
	fired := `"fired_at":"2026-11-22T10:00:00.000Z"`
	if code, body := q.do("PATCH", path, `{"payload":{"uuid":"`+uuid.NewString()+`",`+fired+`,"thing":{"id":"e1","mode":"ok"}}}`); code != 422 ||
		!strings.Contains(string(body), "the uuid must stay") {
		t.Fatalf("an edit that changes the uuid: %d %s", code, body)
	}
	if code, _ := q.do("PATCH", path, `{"payload":{"uuid":"`+msg.ID+`",`+fired+`},"status":"archived"}`); code != 422 {
		t.Fatalf("status and payload at once: %d", code)
	}
	code, body := q.do("PATCH", path, `{"payload":{"uuid":"`+msg.ID+`",`+fired+`,"thing":{"id":"e1","mode":"ok"}}}`, "X-Request-Id", "edit-1")
	if code != 200 {
		t.Fatalf("edit: %d %s", code, body)
	}
	var edited failedmsg.FailedMessage
	q.get(path, &edited)
	if !edited.Edited || !strings.Contains(string(edited.Payload), `"mode":"ok"`) || !strings.Contains(string(edited.OriginalPayload), `"mode":"a"`) ||
		edited.MessageID != msg.ID {
		t.Fatalf("edited: %+v", edited)
	}
	// Still broken for mode a: the edited payload is what the handler gets.
	q.awaitRetry(q.retry(`{"ids":["` + m.ID + `"]}`))
	q.eventually("resolved", func() bool { q.get(path, &edited); return edited.Status == "resolved" })
	if n := q.handledCount("e1"); n != 1 {
		t.Fatalf("handled %d times", n)
	}
	if code, _ := q.do("PATCH", path, `{"payload":{"uuid":"`+msg.ID+`",`+fired+`}}`); code != 409 {
		t.Fatalf("edit of a resolved message: %d", code)
	}
	var acts struct {
		Embedded struct {
			Items []failedmsg.FailedMessageAction `json:"failed-message-actions"`
		} `json:"_embedded"`
	}
	q.get("/v1/failed-message-actions", &acts)
	if len(acts.Embedded.Items) != 2 || acts.Embedded.Items[1].Action != "edit" || acts.Embedded.Items[1].RequestID != "edit-1" {
		t.Fatalf("actions: %+v", acts.Embedded.Items)
	}
}
