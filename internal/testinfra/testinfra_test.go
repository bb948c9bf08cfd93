package testinfra_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestRequireInfra runs this test binary again without the test environment:
// the helper must skip, and fail when SAGITTARIUS_REQUIRE_INFRA=1.
func TestRequireInfra(t *testing.T) {
	if os.Getenv("TESTINFRA_CHILD") == "1" {
		testinfra.RequireInfra(t)
		t.Log("RequireInfra returned")
		return
	}
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAGITTARIUS_") {
			base = append(base, kv)
		}
	}
	run := func(env ...string) (string, error) {
		c := exec.Command(os.Args[0], "-test.run=^TestRequireInfra$", "-test.v", "-test.count=1")
		c.Env = append(append(append([]string{}, base...), "TESTINFRA_CHILD=1"), env...)
		out, err := c.CombinedOutput()
		return string(out), err
	}

	out, err := run()
	if err != nil || !strings.Contains(out, "--- SKIP") {
		t.Errorf("without the environment: want a skip, got err=%v\n%s", err, out)
	}
	out, err = run("SAGITTARIUS_REQUIRE_INFRA=1")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "SAGITTARIUS_TEST_AMQP_URL") {
		t.Errorf("with SAGITTARIUS_REQUIRE_INFRA=1: want a failure naming the variables, got err=%v\n%s", err, out)
	}
	out, err = run("SAGITTARIUS_TEST_AMQP_URL=amqp://u:p@127.0.0.1:1/",
		"SAGITTARIUS_TEST_RABBIT_API=http://u:p@127.0.0.1:1", "SAGITTARIUS_TEST_MYSQL_DSN=u:p@tcp(127.0.0.1:1)/")
	if err != nil || !strings.Contains(out, "RequireInfra returned") {
		t.Errorf("with the environment: want RequireInfra to return, got err=%v\n%s", err, out)
	}
}

func TestNewVhost(t *testing.T) {
	var vhost string
	t.Run("use", func(t *testing.T) {
		var amqpURL string
		amqpURL, vhost = testinfra.NewVhost(t)
		if !strings.HasSuffix(amqpURL, "/"+url.PathEscape(vhost)) {
			t.Fatalf("URL %q does not name vhost %q", redact(amqpURL), vhost)
		}
		ch := channel(t, amqpURL)
		if err := ch.ExchangeDeclarePassive(testinfra.Exchange, "fanout", true, false, false, false, nil); err == nil {
			t.Error("sagittarius-a exists in a fresh vhost; it should not be pre-declared")
		}
		ch = channel(t, amqpURL)
		if _, err := ch.QueueDeclare("q", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.PublishWithContext(context.Background(), "", "q", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		q := waitQueue(t, vhost, "q", func(q testinfra.QueueInfo) bool { return q.Messages == 1 })
		if !q.Durable {
			t.Errorf("queue info: %+v", q)
		}
	})
	var vhosts []struct{ Name string }
	testinfra.ManagementGet(t, "/api/vhosts", &vhosts)
	for _, v := range vhosts {
		if v.Name == vhost {
			t.Errorf("vhost %s still exists after its test ended", vhost)
		}
	}
}

func TestNewDatabase(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		db := testinfra.NewDatabase(t)
		if err := db.Get(&name, "SELECT DATABASE()"); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "test_") {
			t.Errorf("database name %q", name)
		}
		if _, err := db.Exec("CREATE TABLE t (id BIGINT PRIMARY KEY, at DATETIME(3) NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := db.Exec("INSERT INTO t VALUES (1, ?)", now); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		if err := db.Get(&at, "SELECT at FROM t WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		if !at.Equal(now) || at.Location() != time.UTC {
			t.Errorf("round trip of %v gave %v (parseTime=true&loc=UTC expected)", now, at)
		}
		dsn := testinfra.NewDatabaseDSN(t)
		other := testinfra.OpenDatabase(t, dsn)
		var n int
		if err := other.Get(&n, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"); err != nil || n != 0 {
			t.Errorf("second database is not empty: %d tables, %v", n, err)
		}
	})
	admin := testinfra.OpenDatabase(t, testinfra.RequireInfra(t).MySQLDSN)
	var n int
	if err := admin.Get(&n, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// TestServicePermissions checks, on a real broker, that the permission rules
// given to every service keep it to its own queues and to sagittarius-a.
func TestServicePermissions(t *testing.T) {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	// Another service's queue and exchange, made by the admin.
	ch := channel(t, adminURL)
	for _, q := range []string{"crm.customers", "sales.orderly"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.ExchangeDeclare("crm.customers.retry", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	svc := testinfra.NewServiceUser(t, vhost, "sales.orders")

	allowed := map[string]func(*amqp.Channel) error{
		"passively check sagittarius-a": func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(testinfra.Exchange, "fanout", true, false, false, false, nil)
		},
		"declare its queue and bind it to sagittarius-a": func(ch *amqp.Channel) error {
			if _, err := ch.QueueDeclare("sales.orders", true, false, false, false, nil); err != nil {
				return err
			}
			return ch.QueueBind("sales.orders", "", testinfra.Exchange, false, nil)
		},
		"declare its retry exchange and queues, bind them": func(ch *amqp.Channel) error {
			if err := ch.ExchangeDeclare("sales.orders.retry", "direct", true, false, false, false, nil); err != nil {
				return err
			}
			if _, err := ch.QueueDeclare("sales.orders.retry.1000", true, false, false, false, nil); err != nil {
				return err
			}
			return ch.QueueBind("sales.orders", "sales.orders", "sales.orders.retry", false, nil)
		},
		"publish to sagittarius-a": func(ch *amqp.Channel) error { return publish(ch, testinfra.Exchange, "") },
		"publish to its retry exchange": func(ch *amqp.Channel) error {
			return publish(ch, "sales.orders.retry", "sales.orders")
		},
		"consume its queue": func(ch *amqp.Channel) error {
			_, err := ch.Consume("sales.orders", "", false, false, false, false, nil)
			return err
		},
	}
	refused := map[string]func(*amqp.Channel) error{
		"declare sagittarius-a": func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(testinfra.Exchange, "fanout", true, false, false, false, nil)
		},
		"declare another service's queue": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("crm.customers", true, false, false, false, nil)
			return err
		},
		"declare a queue sharing its prefix": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("sales.ordersx", true, false, false, false, nil)
			return err
		},
		"consume another service's queue": func(ch *amqp.Channel) error {
			_, err := ch.Consume("crm.customers", "", false, false, false, false, nil)
			return err
		},
		"read another service's queue with basic.get": func(ch *amqp.Channel) error {
			_, _, err := ch.Get("sales.orderly", false)
			return err
		},
		"publish to the default exchange": func(ch *amqp.Channel) error { return publish(ch, "", "crm.customers") },
		"publish to another service's exchange": func(ch *amqp.Channel) error {
			return publish(ch, "crm.customers.retry", "crm.customers")
		},
		"bind another service's queue": func(ch *amqp.Channel) error {
			return ch.QueueBind("crm.customers", "", testinfra.Exchange, false, nil)
		},
	}
	// Map order is random: run the allowed ones in a fixed order (they build on each other).
	for _, name := range []string{"passively check sagittarius-a", "declare its queue and bind it to sagittarius-a",
		"declare its retry exchange and queues, bind them", "publish to sagittarius-a", "publish to its retry exchange", "consume its queue"} {
		if err := allowed[name](channel(t, svc)); err != nil {
			t.Errorf("sales.orders should be allowed to %s: %v", name, err)
		}
	}
	for name, f := range refused {
		err := f(channel(t, svc))
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
			t.Errorf("sales.orders should be refused to %s (403 ACCESS_REFUSED), got %v", name, err)
		}
	}
}

// TestSubscriberPermissions checks the rules of scripts/add-subscriber.
func TestSubscriberPermissions(t *testing.T) {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	if _, err := channel(t, adminURL).QueueDeclare("sales.orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	sub := testinfra.NewUser(t, vhost, testinfra.SubscriberPermissions("acme.analytics"))
	ch := channel(t, sub)
	if _, err := ch.QueueDeclare("acme.analytics", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("acme.analytics", "", testinfra.Exchange, false, nil); err != nil {
		t.Fatalf("a subscriber must bind its queue to sagittarius-a: %v", err)
	}
	if _, err := ch.Consume("acme.analytics", "", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*amqp.Channel) error{
		"publish to sagittarius-a":        func(ch *amqp.Channel) error { return publish(ch, testinfra.Exchange, "") },
		"publish to the default exchange": func(ch *amqp.Channel) error { return publish(ch, "", "sales.orders") },
		"consume a service's queue": func(ch *amqp.Channel) error {
			_, err := ch.Consume("sales.orders", "", false, false, false, false, nil)
			return err
		},
	} {
		err := f(channel(t, sub))
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
			t.Errorf("a subscriber should be refused to %s, got %v", name, err)
		}
	}
}

// TestStartRabbitNode starts a separate node, kills it with SIGKILL and
// restarts it: a confirmed persistent message in a durable queue survives,
// clients see the connection drop, and new connections work again.
func TestStartRabbitNode(t *testing.T) {
	amqpURL, node := testinfra.StartRabbitNode(t)
	t.Logf("node: %v", node)
	shared := testinfra.RequireInfra(t).AMQPURL
	if amqpURL == shared {
		t.Fatal("the throw-away node must not be the shared broker")
	}

	conn := dial(t, amqpURL)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("survivor", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", "survivor", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("still here")})
	if err != nil {
		t.Fatal(err)
	}
	if !dc.Wait() {
		t.Fatal("publish not confirmed")
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	// The management API of the node answers.
	code, _ := httpGet(t, node.APIURL+"/api/overview")
	if code != http.StatusOK {
		t.Errorf("management API of the node: HTTP %d", code)
	}

	node.Kill()
	if node.Running() {
		t.Fatal("node still running after Kill")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not notice the broker's death")
	}
	if c, err := amqp.Dial(amqpURL); err == nil {
		c.Close()
		t.Fatal("dial succeeded while the node is dead")
	}

	node.Restart(t)
	ch = channel(t, amqpURL)
	d, ok, err := ch.Get("survivor", true)
	if err != nil || !ok || string(d.Body) != "still here" {
		t.Fatalf("after restart: get = %q, %v, %v; want the confirmed message", d.Body, ok, err)
	}
}

// --- helpers

func dial(t *testing.T, u string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatalf("dial %s: %v", redact(u), err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// channel opens a channel on a new connection: an access error closes the
// channel, so each check gets its own.
func channel(t *testing.T, u string) *amqp.Channel {
	t.Helper()
	ch, err := dial(t, u).Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// publish publishes one message with confirms and returns the broker's verdict:
// an access error closes the channel instead of confirming.
func publish(ch *amqp.Channel, exchange, key string) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, amqp.Publishing{Body: []byte("probe")})
	if err != nil {
		return err
	}
	select {
	case <-dc.Done():
		// A refused publish closes the channel; the confirm of a closed channel is a nack.
		if dc.Acked() {
			return nil
		}
		select {
		case e := <-closed:
			if e != nil {
				return e
			}
		case <-time.After(5 * time.Second):
		}
		return errors.New("publish nacked")
	case e := <-closed:
		if e == nil {
			return errors.New("channel closed")
		}
		return e
	case <-time.After(10 * time.Second):
		return errors.New("no confirm within 10s")
	}
}

func waitQueue(t *testing.T, vhost, name string, ok func(testinfra.QueueInfo) bool) testinfra.QueueInfo {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		q := testinfra.Queue(t, vhost, name)
		if ok(q) {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s/%s never reached the expected state: %+v", vhost, name, q)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", redact(u), err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, ""
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
