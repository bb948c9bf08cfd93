package testinfra

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeTimeout bounds each start/stop of a throw-away node. A node boots in
// about 12 s on an idle 2-core machine, several times that on a loaded one.
const nodeTimeout = 150 * time.Second

// RabbitNode is a throw-away RabbitMQ node started by StartRabbitNode, separate
// from the shared broker: fault tests may kill and restart it.
//
// Its methods fail the test on error and must be called from the goroutine
// running the test. They are safe for concurrent use but serialised.
type RabbitNode struct {
	// Name is the Erlang node name, e.g. sagtest-1a2b3c4d@localhost.
	Name string
	// AMQPURL is the administrator's URL of the default vhost "/".
	AMQPURL string
	// APIURL is the management API base URL with the administrator's credentials.
	APIURL string
	// Dir holds the node's configuration, data and logs (log/, console.log).
	Dir string

	distPort int
	t        testing.TB
	script   string
	args     []string
	env      []string
	mu       sync.Mutex
}

// StartRabbitNode starts a separate RabbitMQ node (own node name, free ports
// on 127.0.0.1, data under t.TempDir(), run as the test's user, epmd and the
// Erlang distribution on loopback) through scripts/rabbit-node, waits
// until it accepts connections, and returns the administrator's AMQP URL of
// its default vhost "/" with the node. The node is stopped and its data
// deleted in t.Cleanup; if the test binary dies first, a watchdog started by
// the script does the same.
//
// Skipped (or failed) like RequireInfra when the test environment is unset.
func StartRabbitNode(t testing.TB) (amqpURL string, node *RabbitNode) {
	t.Helper()
	n := newRabbitNode(t, randomHex(16))
	n.Start(t)
	return n.AMQPURL, n
}

// newRabbitNode prepares (but does not start) a throw-away node whose
// administrator "admin" has password pw, and registers its purge in t.Cleanup.
func newRabbitNode(t testing.TB, pw string) *RabbitNode {
	t.Helper()
	env := RequireInfra(t)
	script := filepath.Join(env.Root, "scripts", "rabbit-node")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("StartRabbitNode needs %s: %v", script, err)
	}
	// The node runs as the test's own user (scripts/rabbit-node bypasses the
	// Debian wrapper), so testing's mode-0700 temporary folder is fine as it is.
	tmp := t.TempDir()
	ports := freePorts(t, 3)
	user := "admin"
	n := &RabbitNode{
		Name: "sagtest-" + randomHex(4) + "@localhost",
		AMQPURL: (&url.URL{Scheme: "amqp", User: url.UserPassword(user, pw),
			Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Path: "/"}).String(),
		APIURL: (&url.URL{Scheme: "http", User: url.UserPassword(user, pw),
			Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))}).String(),
		Dir:      filepath.Join(tmp, "rabbitmq"),
		distPort: ports[1],
		t:        t,
		script:   script,
		env:      append(os.Environ(), "RABBIT_NODE_DEFAULT_PASS="+pw),
	}
	n.args = []string{
		"--dir", n.Dir, "--node", n.Name,
		"--port", strconv.Itoa(ports[0]), "--dist-port", strconv.Itoa(ports[1]),
		"--management-port", strconv.Itoa(ports[2]),
		"--default-user", user, "--timeout", strconv.Itoa(int(nodeTimeout / time.Second)),
	}
	t.Cleanup(func() {
		if out, err := n.run("purge"); err != nil {
			t.Errorf("stopping RabbitMQ node %s: %v\n%s", n.Name, err, out)
		}
	})
	return n
}

// Kill sends SIGKILL to the node's Erlang VM and returns once the process is
// gone: clients see their connections drop without a close handshake.
func (n *RabbitNode) Kill() {
	n.t.Helper()
	n.must(n.t, "kill")
}

// Start starts the node if it is not running (after Kill or Stop) and returns
// once it accepts connections. Durable queues and persistent messages survive.
func (n *RabbitNode) Start(t testing.TB) {
	t.Helper()
	n.must(t, "start", "--owner-pid", strconv.Itoa(os.Getpid()))
}

// Stop stops the node gracefully (rabbitmqctl stop): clients receive a
// connection.close from the broker.
func (n *RabbitNode) Stop(t testing.TB) {
	t.Helper()
	n.must(t, "stop")
}

// Restart stops the node gracefully if it runs (it may have been killed), then
// starts it and waits until it accepts connections.
func (n *RabbitNode) Restart(t testing.TB) {
	t.Helper()
	n.must(t, "stop")
	n.must(t, "start", "--owner-pid", strconv.Itoa(os.Getpid()))
}

// Running reports whether the node's process is alive.
func (n *RabbitNode) Running() bool {
	_, err := n.run("status")
	return err == nil
}

func (n *RabbitNode) must(t testing.TB, cmd string, extra ...string) {
	t.Helper()
	start := time.Now()
	out, err := n.run(cmd, extra...)
	if err != nil {
		t.Fatalf("scripts/rabbit-node %s %s: %v\n%s", cmd, n.Name, err, out)
	}
	t.Logf("RabbitMQ node %s: %s took %v", n.Name, cmd, time.Since(start).Round(10*time.Millisecond))
}

func (n *RabbitNode) run(cmd string, extra ...string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	args := append([]string{cmd}, n.args...)
	args = append(args, extra...)
	c := exec.CommandContext(ctx, n.script, args...)
	c.Env = n.env
	c.Stdin = nil
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// freePorts returns n distinct ports that are free on 127.0.0.1, chosen at
// random below 32768 (the kernel's ephemeral range starts there, and the
// RabbitMQ CLI uses the distribution port + 10000).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free ports found in 20000-32767")
		}
		p := 20000 + rand.IntN(12768)
		if seen[p] || seen[p-1] || seen[p+1] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		seen[p] = true
		ports = append(ports, p)
	}
	return ports
}

// String describes the node for test logs (without credentials).
func (n *RabbitNode) String() string {
	u, err := url.Parse(n.AMQPURL)
	if err != nil {
		return n.Name
	}
	return fmt.Sprintf("%s (amqp %s, dir %s)", n.Name, u.Host, n.Dir)
}
