package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A cluster of the platform's own (Config.Nodes > 1): every node is started
// through scripts/rabbit-node with one shared Erlang cookie
// (RABBIT_NODE_COOKIE) and cluster_partition_handling = pause_minority, the
// nodes after the first join the first (scripts/rabbit-node join --seed),
// and Start waits until the management API lists every node running. The
// services get QUEUE_TYPE=quorum (their queues are declared once the cluster
// is formed, so each quorum queue has a replica on every node) and an
// AMQP_URL listing every node (eventbus/cluster.go spreads and fails over).
//
// With pause_minority a node that sees fewer than half of the cluster stops
// its RabbitMQ application (its Erlang VM stays up) until it sees a majority
// again: in a three-node cluster cut in one node and two, the two keep
// serving (they hold a majority of every quorum queue's replicas and elect
// new leaders for the queues the lone node led), and the lone node closes
// its clients' connections, so they reconnect to the other two. No side
// accepts a write the other cannot see: nothing diverges, nothing to merge.

// addNodes adds count-1 nodes to p.Nodes (which holds the first), sharing
// one Erlang cookie, with pause_minority.
func (p *Platform) addNodes(count int) error {
	ports, err := freePorts(3 * (count - 1))
	if err != nil {
		return err
	}
	cookie := randomHex(16)
	first := p.Nodes[0]
	base := first.env
	for i := 1; i < count; i++ {
		n := newRabbitNode(p.cfg.Root, filepath.Join(p.cfg.Dir, "rabbitmq-"+strconv.Itoa(i+1)), [3]int{ports[3*i-3], ports[3*i-2], ports[3*i-1]})
		// One administrator for all: joining discards a node's own users.
		n.User, n.Password = first.User, first.Password
		p.Nodes = append(p.Nodes, n)
	}
	for _, n := range p.Nodes {
		n.args = append(n.args, "--partition-handling", "pause_minority")
		n.env = append(append([]string(nil), base...), "RABBIT_NODE_COOKIE="+cookie)
		for _, o := range p.Nodes {
			if o != n {
				n.peers = append(n.peers, o)
			}
		}
	}
	return nil
}

// startBroker starts the platform's node, or its nodes and forms their
// cluster, and waits until the management API answers (with every node
// running).
func (p *Platform) startBroker(ctx context.Context) error {
	errs := make([]error, len(p.Nodes))
	var wg sync.WaitGroup
	for i, n := range p.Nodes {
		wg.Go(func() { errs[i] = n.Start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, n := range p.Nodes[1:] {
		if err := n.run(ctx, "join", "--seed", p.Nodes[0].Name); err != nil {
			return err
		}
	}
	if err := p.Broker.WaitAPI(ctx, 60*time.Second); err != nil {
		return err
	}
	if len(p.Nodes) > 1 {
		if _, err := p.WaitClusterRunning(ctx, 2*time.Minute); err != nil {
			return err
		}
		p.logf("RabbitMQ cluster of %d nodes formed (pause_minority)", len(p.Nodes))
	}
	return nil
}

// clusterURL is the AMQP_URL of service s on a cluster: every node's URL,
// comma-separated.
func (p *Platform) clusterURL(s *Service) string {
	var urls []string
	for _, n := range p.Nodes {
		urls = append(urls, (&url.URL{Scheme: "amqp", User: url.UserPassword(s.user, s.password), Host: n.amqpHost(), Path: "/" + p.Vhost}).String())
	}
	return strings.Join(urls, ",")
}

// ClusterNode is what the management API says about a node of the cluster.
type ClusterNode struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
}

// WaitClusterRunning waits until the management API (of any node that
// answers) lists every node of p.Nodes running, and returns how long it took.
func (p *Platform) WaitClusterRunning(ctx context.Context, within time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var nodes []ClusterNode
		err := p.Broker.API(ctx, http.MethodGet, "/api/nodes?columns=name,running", nil, &nodes)
		running := 0
		for _, n := range nodes {
			if n.Running {
				running++
			}
		}
		if err == nil && running == len(p.Nodes) {
			return time.Since(start), nil
		}
		if time.Since(start) > within || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("platform: %d of %d RabbitMQ nodes running after %v (%v)", running, len(p.Nodes), within, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Leaders counts, per node name, the queues of the platform's vhost whose
// (quorum queue) leader, or (classic queue) home, is on that node.
func (p *Platform) Leaders(ctx context.Context) (map[string]int, error) {
	var qs []struct {
		Name   string `json:"name"`
		Node   string `json:"node"`
		Leader string `json:"leader"`
	}
	if err := p.Broker.API(ctx, http.MethodGet, "/api/queues/"+url.PathEscape(p.Vhost)+"?columns=name,node,leader", nil, &qs); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, n := range p.Nodes {
		out[n.Name] = 0
	}
	for _, q := range qs {
		l := q.Leader
		if l == "" {
			l = q.Node
		}
		out[l]++
	}
	return out, nil
}

// Ctl runs rabbitmqctl args against the node (scripts/rabbit-node ctl) and
// returns its output.
func (n *RabbitNode) Ctl(ctx context.Context, args ...string) (string, error) {
	if n.script == "" {
		return "", errNotOwn
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c := exec.CommandContext(ctx, n.script, append(append(append([]string{"ctl"}, n.args...), "--"), args...)...)
	c.Env = n.env
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s on %s: %v\n%s", strings.Join(args, " "), n.Name, err, tailBytes(out, 2000))
	}
	return string(out), nil
}

// API calls the management API as the administrator: method on path (with
// names escaped by the caller), body encoded as JSON unless nil, the answer
// decoded into out unless nil. Any status but 2xx is an error. On a cluster,
// when the node does not answer (it is down or paused) the other nodes are
// asked in turn.
func (n *RabbitNode) API(ctx context.Context, method, path string, body, out any) error {
	err := n.api(ctx, method, path, body, out)
	for _, o := range n.peers {
		if err == nil || strings.Contains(err.Error(), ": HTTP ") {
			return err // answered
		}
		err = o.api(ctx, method, path, body, out)
	}
	return err
}

// StartOn starts an instance on port (one of Ports, free: its instance
// killed) and waits until it is healthy.
func (s *Service) StartOn(ctx context.Context, port int) (*Instance, error) {
	in, err := s.start(port)
	if err != nil {
		return nil, err
	}
	return in, in.WaitHealthy(ctx, 90*time.Second)
}

// InstanceOn returns the running instance on port, or nil.
func (s *Service) InstanceOn(port int) *Instance {
	for _, in := range s.Instances() {
		if in.Addr == "127.0.0.1:"+strconv.Itoa(port) {
			return in
		}
	}
	return nil
}
