package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RabbitNode is a RabbitMQ node of its own (node name, folder, ports on
// 127.0.0.1), run through scripts/rabbit-node, with the management plugin.
// A watchdog started by the script purges it if the process that started it
// dies. Its methods are safe for concurrent use but serialised.
type RabbitNode struct {
	Name     string // Erlang node name, chaos-<hex>@localhost
	AMQPPort int
	APIPort  int
	User     string // administrator (all permissions)
	Password string

	host     string        // of AMQP and the management API
	amqpUser *url.Userinfo // administrator on AMQP when not User/Password
	script   string        // "" for a node that is not the platform's own
	args     []string
	env      []string
	peers    []*RabbitNode // the other nodes of its cluster: API falls back on them
	mu       sync.Mutex
}

func newRabbitNode(root, dir string, ports [3]int) *RabbitNode {
	n := &RabbitNode{
		Name:     "chaos-" + randomHex(4) + "@localhost",
		AMQPPort: ports[0],
		APIPort:  ports[2],
		User:     "admin",
		Password: randomHex(16),
		host:     "127.0.0.1",
		script:   filepath.Join(root, "scripts", "rabbit-node"),
	}
	n.args = []string{"--dir", dir, "--node", n.Name, "--port", strconv.Itoa(ports[0]),
		"--dist-port", strconv.Itoa(ports[1]), "--management-port", strconv.Itoa(ports[2]),
		"--default-user", n.User, "--timeout", "150"}
	n.env = append(os.Environ(), "RABBIT_NODE_DEFAULT_PASS="+n.Password)
	return n
}

// errNotOwn is the error of starting or killing a server the platform did
// not start.
var errNotOwn = errors.New("platform: the server is not the platform's own (Config.Servers)")

// attachRabbitNode returns a RabbitNode for a node that already runs, reached
// as the administrator of amqpURL (no vhost) and apiURL (the management API
// with credentials). It cannot be started, killed nor purged.
func attachRabbitNode(amqpURL, apiURL string) (*RabbitNode, error) {
	a, err := url.Parse(amqpURL)
	if err != nil || a.User == nil {
		return nil, fmt.Errorf("platform: AMQP URL of the administrator: %v", err)
	}
	m, err := url.Parse(apiURL)
	if err != nil || m.User == nil {
		return nil, fmt.Errorf("platform: management API URL with credentials: %v", err)
	}
	if a.Hostname() != m.Hostname() {
		return nil, fmt.Errorf("platform: AMQP on %s but the management API on %s", a.Hostname(), m.Hostname())
	}
	n := &RabbitNode{Name: a.Host, host: a.Hostname(), User: m.User.Username(), amqpUser: a.User}
	n.Password, _ = m.User.Password()
	n.AMQPPort, n.APIPort = 5672, 15672
	if p, err := strconv.Atoi(a.Port()); err == nil {
		n.AMQPPort = p
	}
	if p, err := strconv.Atoi(m.Port()); err == nil {
		n.APIPort = p
	}
	return n, nil
}

func (n *RabbitNode) amqpHost() string { return net.JoinHostPort(n.host, strconv.Itoa(n.AMQPPort)) }

// delete DELETEs path on the management API; a missing object is no error.
func (n *RabbitNode) delete(ctx context.Context, path string) error {
	err := n.API(ctx, http.MethodDelete, path, nil, nil)
	if err != nil && strings.Contains(err.Error(), "HTTP 404") {
		return nil
	}
	return err
}

// Start starts the node unless it runs and returns once it accepts
// connections. Durable queues and persistent messages survive a Kill.
func (n *RabbitNode) Start(ctx context.Context) error {
	return n.run(ctx, "start", "--owner-pid", strconv.Itoa(os.Getpid()))
}

// Kill sends SIGKILL to the node's Erlang VM and returns once it is gone.
func (n *RabbitNode) Kill(ctx context.Context) error { return n.run(ctx, "kill") }

// Purge kills the node if it runs and deletes its folder.
func (n *RabbitNode) Purge(ctx context.Context) error { return n.run(ctx, "purge") }

// Running reports whether the node's Erlang VM is alive.
func (n *RabbitNode) Running(ctx context.Context) bool { return n.run(ctx, "status") == nil }

func (n *RabbitNode) run(ctx context.Context, cmd string, extra ...string) error {
	if n.script == "" {
		if cmd == "purge" {
			return nil // nothing of its own to delete
		}
		return errNotOwn
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	args := append(append([]string{cmd}, n.args...), extra...)
	c := exec.CommandContext(ctx, n.script, args...)
	c.Env = n.env
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/rabbit-node %s %s: %v\n%s", cmd, n.Name, err, tailBytes(out, 3000))
	}
	return nil
}

// AdminURL is the administrator's AMQP URL of vhost.
func (n *RabbitNode) AdminURL(vhost string) string {
	user := n.amqpUser
	if user == nil {
		user = url.UserPassword(n.User, n.Password)
	}
	return (&url.URL{Scheme: "amqp", User: user, Host: n.amqpHost(), Path: "/" + vhost}).String()
}

var apiClient = &http.Client{Timeout: 20 * time.Second}

// api calls the management API of this node only (see API).
func (n *RabbitNode) api(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(n.host, strconv.Itoa(n.APIPort))}
	u.Path, _ = url.PathUnescape(path)
	u.RawPath = path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.Path, _ = url.PathUnescape(path[:i])
		u.RawPath = path[:i]
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(n.User, n.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("management API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("management API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("management API %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("management API %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Queue is what the management API says about a queue.
type Queue struct {
	Name       string `json:"name"`
	Messages   int    `json:"messages"`
	Ready      int    `json:"messages_ready"`
	Unacked    int    `json:"messages_unacknowledged"`
	Consumers  int    `json:"consumers"`
	Type       string `json:"type"`
	IdleSince  string `json:"idle_since"`
	Durable    bool   `json:"durable"`
	Exclusive  bool   `json:"exclusive"`
	AutoDelete bool   `json:"auto_delete"`
}

// Queues lists the queues of vhost (counts lag about a second).
func (n *RabbitNode) Queues(ctx context.Context, vhost string) ([]Queue, error) {
	var qs []Queue
	err := n.API(ctx, http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"?columns=name,messages,messages_ready,messages_unacknowledged,consumers,type,idle_since", nil, &qs)
	return qs, err
}

// PeekedMessage is a message read from a queue with the management API and
// requeued.
type PeekedMessage struct {
	Payload    string `json:"payload"`
	Properties struct {
		MessageID   string         `json:"message_id"`
		Type        string         `json:"type"`
		AppID       string         `json:"app_id"`
		ContentType string         `json:"content_type"`
		Headers     map[string]any `json:"headers"`
	} `json:"properties"`
}

// Peek reads up to count messages of a queue and puts them back.
func (n *RabbitNode) Peek(ctx context.Context, vhost, queue string, count int) ([]PeekedMessage, error) {
	var out []PeekedMessage
	err := n.API(ctx, http.MethodPost, "/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(queue)+"/get",
		map[string]any{"count": count, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}, &out)
	return out, err
}

// WaitAPI waits until the management API answers (it starts after AMQP).
func (n *RabbitNode) WaitAPI(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := n.API(ctx, http.MethodGet, "/api/overview", nil, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
