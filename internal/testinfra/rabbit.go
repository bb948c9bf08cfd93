package testinfra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// Exchange is the fanout exchange of integration events (eventbus.Exchange;
// repeated here so that testinfra does not depend on the code it tests).
const Exchange = "sagittarius-a"

// Permissions are the three RabbitMQ permission regexes of a user in a vhost.
type Permissions struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// ServicePermissions returns the permissions that scripts/infra-up gives the
// user of service (e.g. "sales.orders"): configure its own queues and
// exchanges (service and service.*), publish to sagittarius-a and its own
// exchanges, read sagittarius-a (to bind) and its own queues.
func ServicePermissions(service string) Permissions {
	own := regexp.QuoteMeta(service) + `(\..+)?`
	return Permissions{
		Configure: "^" + own + "$",
		Write:     "^(" + Exchange + "|" + own + ")$",
		Read:      "^(" + Exchange + "|" + own + ")$",
	}
}

// SubscriberPermissions returns the permissions that scripts/add-subscriber
// gives an external application: its own queues only, plus read on
// sagittarius-a to bind them. It cannot publish to any exchange but its own.
func SubscriberPermissions(name string) Permissions {
	own := regexp.QuoteMeta(name) + `(\..+)?`
	return Permissions{
		Configure: "^" + own + "$",
		Write:     "^" + own + "$",
		Read:      "^(" + Exchange + "|" + own + ")$",
	}
}

var (
	apiClient = &http.Client{Timeout: 30 * time.Second}
)

// managementCall sends one request to the management API of the shared broker
// and returns the status and body. It fails the test on transport errors.
func managementCall(t testing.TB, base, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("management API %s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u, err := url.Parse(base + path)
	if err != nil {
		t.Fatalf("management API: bad URL: %v", err)
	}
	u.RawPath = path // keep %2F in vhost names as they are
	u.Path, _ = url.PathUnescape(path)
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		t.Fatalf("management API %s %s: %v", method, path, err)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("management API %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("management API %s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// managementDo is managementCall that fails the test on any status but 2xx.
func managementDo(t testing.TB, base, method, path string, body any) []byte {
	t.Helper()
	code, b := managementCall(t, base, method, path, body)
	if code/100 != 2 {
		t.Fatalf("management API %s %s: HTTP %d: %s", method, path, code, bytes.TrimSpace(b))
	}
	return b
}

// ManagementGet GETs path (e.g. "/api/queues/VHOST/NAME", "/api/connections")
// from the management API of the shared broker and decodes the JSON answer
// into out (unless out is nil). Any status but 200 fails the test. Use
// url.PathEscape for vhost and queue names in path.
//
// Message counts and rates in the API are statistics: on nodes started by our
// scripts they lag up to about two seconds (five by RabbitMQ's defaults). Poll,
// or use QueueDeclarePassive for an exact count of ready messages.
func ManagementGet(t testing.TB, path string, out any) {
	t.Helper()
	env := RequireInfra(t)
	managementGetFrom(t, env.RabbitAPI, path, out)
}

func managementGetFrom(t testing.TB, base, path string, out any) {
	t.Helper()
	b := managementDo(t, base, http.MethodGet, path, nil)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("management API GET %s: decoding %T: %v", path, out, err)
		}
	}
}

// QueueInfo is a subset of what the management API says about a queue.
type QueueInfo struct {
	Name                   string         `json:"name"`
	Vhost                  string         `json:"vhost"`
	Type                   string         `json:"type"`
	Durable                bool           `json:"durable"`
	Messages               int            `json:"messages"`
	MessagesReady          int            `json:"messages_ready"`
	MessagesUnacknowledged int            `json:"messages_unacknowledged"`
	Consumers              int            `json:"consumers"`
	Arguments              map[string]any `json:"arguments"`
	// Of a cluster (see RabbitCluster.Queue):
	Node    string   `json:"node"`    // the leader of a quorum queue, the home node of a classic one
	Leader  string   `json:"leader"`  // quorum queues
	Members []string `json:"members"` // quorum queues: the nodes holding a replica
	Online  []string `json:"online"`  // quorum queues: the members that are up
}

// Queue returns the management API's view of a queue of the shared broker
// (counts lag about two seconds, see ManagementGet). A missing queue fails the test.
func Queue(t testing.TB, vhost, name string) QueueInfo {
	t.Helper()
	var q QueueInfo
	ManagementGet(t, "/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(name), &q)
	return q
}

// NewVhost creates a fresh vhost on the shared broker and returns the admin
// AMQP URL of that vhost and its name. The admin has all permissions there;
// nothing is declared in it (not even sagittarius-a, see DeclareExchange).
// The vhost, with everything in it, is deleted in t.Cleanup.
func NewVhost(t testing.TB) (amqpURL string, vhost string) {
	t.Helper()
	env := RequireInfra(t)
	vhost = uniqueName(t, "test", "-", 100)
	admin := adminUser(t, env)
	vp := url.PathEscape(vhost)
	managementDo(t, env.RabbitAPI, http.MethodPut, "/api/vhosts/"+vp, map[string]string{"description": "test " + t.Name()})
	t.Cleanup(func() {
		code, b := managementCall(t, env.RabbitAPI, http.MethodDelete, "/api/vhosts/"+vp, nil)
		if code/100 != 2 && code != http.StatusNotFound {
			t.Errorf("deleting vhost %s: HTTP %d: %s", vhost, code, b)
		}
	})
	all := Permissions{Configure: ".*", Write: ".*", Read: ".*"}
	managementDo(t, env.RabbitAPI, http.MethodPut, "/api/permissions/"+vp+"/"+url.PathEscape(admin), all)
	return env.AMQPURL + vp, vhost
}

// DeclareExchange declares the durable fanout exchange sagittarius-a in vhost,
// as scripts/infra-up does in the production vhost.
func DeclareExchange(t testing.TB, vhost string) {
	t.Helper()
	env := RequireInfra(t)
	managementDo(t, env.RabbitAPI, http.MethodPut,
		"/api/exchanges/"+url.PathEscape(vhost)+"/"+Exchange,
		map[string]any{"type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": map[string]any{}})
}

// NewUser creates a user with a random name and password on the shared broker,
// with permissions p in vhost, and returns its AMQP URL for that vhost. The
// user is deleted in t.Cleanup.
func NewUser(t testing.TB, vhost string, p Permissions) (amqpURL string) {
	t.Helper()
	env := RequireInfra(t)
	name := uniqueName(t, "test", "-", 120)
	pw := randomHex(16)
	up := url.PathEscape(name)
	managementDo(t, env.RabbitAPI, http.MethodPut, "/api/users/"+up, map[string]string{"password": pw, "tags": ""})
	t.Cleanup(func() {
		code, b := managementCall(t, env.RabbitAPI, http.MethodDelete, "/api/users/"+up, nil)
		if code/100 != 2 && code != http.StatusNotFound {
			t.Errorf("deleting user %s: HTTP %d: %s", name, code, b)
		}
	})
	managementDo(t, env.RabbitAPI, http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/"+up, p)
	u, err := url.Parse(env.AMQPURL)
	if err != nil {
		t.Fatalf("%s: %v", EnvAMQPURL, err)
	}
	u.User = url.UserPassword(name, pw)
	return u.String() + url.PathEscape(vhost)
}

// NewServiceUser creates a user with the production permissions of service
// (ServicePermissions) in vhost and returns its AMQP URL. The user has a
// random name, so tests may run in parallel; delete in t.Cleanup.
func NewServiceUser(t testing.TB, vhost, service string) (amqpURL string) {
	t.Helper()
	return NewUser(t, vhost, ServicePermissions(service))
}

func adminUser(t testing.TB, env Env) string {
	t.Helper()
	u, err := url.Parse(env.AMQPURL)
	if err != nil || u.User == nil {
		t.Fatalf("%s has no user: %v", EnvAMQPURL, err)
	}
	return u.User.Username()
}

// String makes Permissions readable in test failures.
func (p Permissions) String() string {
	return fmt.Sprintf("configure %q write %q read %q", p.Configure, p.Write, p.Read)
}
