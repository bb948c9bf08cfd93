package testinfra

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RabbitCluster is a throw-away RabbitMQ cluster started by
// StartRabbitCluster: separate nodes (see RabbitNode) clustered with
// rabbitmqctl join_cluster, sharing one administrator "admin" and the default
// vhost "/". Fault tests may kill, stop and restart any node.
//
// Its methods fail the test on error and must be called from the goroutine
// running the test.
type RabbitCluster struct {
	// Nodes in the order they were started; Nodes[0] formed the cluster.
	Nodes []*RabbitNode
	t     testing.TB
}

// StartRabbitCluster starts size throw-away RabbitMQ nodes (in parallel),
// clusters them (each node after the first: stop_app, join_cluster with the
// first, start_app), waits until every node reports every other as running,
// and returns the cluster. The nodes are purged in t.Cleanup, or by their
// watchdogs if the test binary dies first.
//
// Skipped (or failed) like RequireInfra when the test environment is unset.
func StartRabbitCluster(t testing.TB, size int) *RabbitCluster {
	t.Helper()
	if size < 1 {
		t.Fatalf("StartRabbitCluster: size %d", size)
	}
	pw := randomHex(16)
	cookie := randomHex(16) // one Erlang cookie for every node and the CLI (scripts/rabbit-node's RABBIT_NODE_COOKIE)
	c := &RabbitCluster{t: t}
	for range size {
		n := newRabbitNode(t, pw)
		n.env = append(n.env, "RABBIT_NODE_COOKIE="+cookie)
		c.Nodes = append(c.Nodes, n)
	}
	start := time.Now()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := n.run("start", "--owner-pid", strconv.Itoa(os.Getpid())); err != nil {
				errs[i] = fmt.Errorf("scripts/rabbit-node start %s: %v\n%s", n.Name, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("RabbitMQ cluster: %d nodes booted in %v", size, time.Since(start).Round(10*time.Millisecond))
	for _, n := range c.Nodes[1:] {
		c.Ctl(n, "stop_app")
		c.Ctl(n, "join_cluster", c.Nodes[0].Name)
		c.Ctl(n, "start_app")
	}
	c.WaitFormed(nodeTimeout)
	t.Logf("RabbitMQ cluster of %d formed in %v: %s", size, time.Since(start).Round(10*time.Millisecond), c)
	return c
}

// URL returns the comma-separated AMQP URLs of every node (the
// administrator's, vhost "/"), in node order: an eventbus.Config.URL.
func (c *RabbitCluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.AMQPURL
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name (as the management API names it), or nil.
func (c *RabbitCluster) Node(name string) *RabbitNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Ctl runs rabbitmqctl against node n with args and returns its output; it
// fails the test when the command fails.
func (c *RabbitCluster) Ctl(n *RabbitNode, args ...string) string {
	c.t.Helper()
	return c.cli(n, "rabbitmqctl", args...)
}

// Queues runs rabbitmq-queues against node n with args (for example
// "delete_member", "add_member", "shrink", "grow") and returns its output; it fails the test when the command fails.
func (c *RabbitCluster) Queues(n *RabbitNode, args ...string) string {
	c.t.Helper()
	return c.cli(n, "rabbitmq-queues", args...)
}

func (c *RabbitCluster) cli(n *RabbitNode, tool string, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, tool, append([]string{"-q", "-n", n.Name}, args...)...)
	// The CLI finds the node through epmd; its own distribution port is
	// derived from the node's (RABBITMQ_DIST_PORT + 10000).
	// The node runs as this user with its Erlang cookie in <dir>/home
	// (scripts/rabbit-node): the CLI reads it there, and talks to epmd and
	// the node on loopback only.
	cmd.Env = append(os.Environ(), "RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"HOME="+filepath.Join(n.Dir, "home"), "ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/" + tool); err == nil {
		cmd.Path = "/usr/lib/rabbitmq/bin/" + tool // not the Debian wrapper, which switches to user rabbitmq
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s -n %s %s: %v\n%s", tool, n.Name, strings.Join(args, " "), err, out)
	}
	c.t.Logf("%s -n %s %s took %v", tool, n.Name, strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
	return strings.TrimSpace(string(out))
}

// WaitFormed waits until the management API of a running node lists every
// node of the cluster as running.
func (c *RabbitCluster) WaitFormed(d time.Duration) {
	c.t.Helper()
	c.WaitRunning(d, c.Nodes...)
}

// WaitRunning waits until the management API of a running node lists every
// one of nodes as a running member of the cluster.
func (c *RabbitCluster) WaitRunning(d time.Duration, nodes ...*RabbitNode) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var list []struct {
			Name    string `json:"name"`
			Running bool   `json:"running"`
		}
		err := c.api("/api/nodes", &list)
		missing := []string{}
		for _, n := range nodes {
			if !slices.ContainsFunc(list, func(e struct {
				Name    string `json:"name"`
				Running bool   `json:"running"`
			}) bool {
				return e.Name == n.Name && e.Running
			}) {
				missing = append(missing, n.Name)
			}
		}
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("RabbitMQ cluster: nodes %v not running after %v (last error: %v)", missing, d, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Queue returns the management API's view of queue in vhost, asked of a
// running node.
func (c *RabbitCluster) Queue(vhost, queue string) QueueInfo {
	c.t.Helper()
	var q QueueInfo
	if err := c.api("/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(queue), &q); err != nil {
		c.t.Fatalf("RabbitMQ cluster: queue %s: %v", queue, err)
	}
	return q
}

// ConnectionNode returns the node that holds the client connection named
// name (its connection_name property), or "" when there is none.
func (c *RabbitCluster) ConnectionNode(name string) string {
	c.t.Helper()
	var list []struct {
		Node string `json:"node"`
		User string `json:"user_provided_name"`
	}
	if err := c.api("/api/connections", &list); err != nil {
		c.t.Fatalf("RabbitMQ cluster: connections: %v", err)
	}
	for _, e := range list {
		if e.User == name {
			return e.Node
		}
	}
	return ""
}

// api GETs path from the management API of the first node that answers and
// decodes the JSON answer into v.
func (c *RabbitCluster) api(path string, v any) error {
	var last error
	client := &http.Client{Timeout: 5 * time.Second}
	for _, n := range c.Nodes {
		u, err := url.Parse(n.APIURL)
		if err != nil {
			return err
		}
		pw, _ := u.User.Password()
		req, err := http.NewRequest(http.MethodGet, (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()+path, nil)
		if err != nil {
			return err
		}
		req.SetBasicAuth(u.User.Username(), pw)
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		err = func() error {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s on %s: %s", path, n.Name, resp.Status)
			}
			return json.NewDecoder(resp.Body).Decode(v)
		}()
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}

// String describes the cluster for test logs (without credentials).
func (c *RabbitCluster) String() string {
	parts := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		parts[i] = n.String()
	}
	return strings.Join(parts, "; ")
}
