package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// The cluster form (chaos -cluster, scripts/chaos --cluster): the platform
// runs on a private three-node RabbitMQ cluster (quorum queues with a replica
// on every node, cluster_partition_handling = pause_minority, every service's
// AMQP_URL listing the three nodes) with two instances of every domain
// service, which the gateway balances. Its scenarios (after baseline):
//
//	node-kill      the node leading the most queues SIGKILLed, restarted; then the one leading the most of the others
//	node-stop      the node leading the most queues stopped gracefully (rabbitmqctl stop_app), then started (start_app)
//	partition      one node cut off from the other two (their Erlang cookies made to differ, connections dropped):
//	               it pauses (pause_minority), the two keep serving; healed, it resumes and rejoins
//	instance-kill  one instance of every domain service SIGKILLed at once, the other serving alone, then restarted
//
// Each line begins with the confirmation gap: the longest interval, from the
// fault's start to the end of its recovery, without an order reaching
// confirmed (read from the orders service's outbox: order_confirmed rows).
var clusterScenarioList = []scenarioDef{
	{"node-kill", nodeKill},
	{"node-stop", nodeStop},
	{"partition", partition},
	{"instance-kill", instanceKill},
}

// clusterScenarioNames are the scenarios of the cluster form, in order.
func clusterScenarioNames() []string {
	out := []string{"baseline"}
	for _, s := range clusterScenarioList {
		out = append(out, s.name)
	}
	return out
}

func findClusterScenario(name string) *scenarioDef {
	for i := range clusterScenarioList {
		if clusterScenarioList[i].name == name {
			return &clusterScenarioList[i]
		}
	}
	return nil
}

// nodeDown is how long a node stays killed, stopped or cut off.
func (c *chaos) nodeDown() time.Duration {
	if c.o.short {
		return 10 * time.Second
	}
	return 30 * time.Second
}

var errNoCluster = errors.New("a cluster scenario needs the cluster form (-cluster)")

// clusterSummary describes the cluster and the instances.
func (c *chaos) clusterSummary() string {
	var nodes []string
	for _, n := range c.p.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s (AMQP :%d)", n.Name, n.AMQPPort))
	}
	inst := 0
	for _, s := range c.p.Services() {
		inst += len(s.Instances())
	}
	return fmt.Sprintf("RabbitMQ cluster of %d nodes (pause_minority): %s; %d instances of %d services behind the gateway",
		len(c.p.Nodes), strings.Join(nodes, ", "), inst, len(c.p.Services()))
}

// leadingNode returns the node leading the most queues of the platform's
// vhost, other than except, and how many it leads.
func (c *chaos) leadingNode(ctx context.Context, except *platform.RabbitNode) (*platform.RabbitNode, int, error) {
	if len(c.p.Nodes) < 3 {
		return nil, 0, errNoCluster
	}
	leaders, err := c.p.Leaders(ctx)
	if err != nil {
		return nil, 0, err
	}
	var best *platform.RabbitNode
	for _, n := range c.p.Nodes {
		if n != except && (best == nil || leaders[n.Name] > leaders[best.Name]) {
			best = n
		}
	}
	return best, leaders[best.Name], nil
}

// confirmationGap returns the longest interval within [from, to] without an
// order_confirmed written by the orders service (the bounds count as
// confirmations), when it began (after from), and the number of
// confirmations within.
func (c *chaos) confirmationGap(ctx context.Context, from, to time.Time) (gap, at time.Duration, n int, err error) {
	db, err := c.p.ServiceDB("orders")
	if err != nil {
		return 0, 0, 0, err
	}
	const layout = "2006-01-02 15:04:05.000000"
	var stamps []string
	if err := db.SelectContext(ctx, &stamps, `SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') FROM eventbus_outbox
		WHERE type = 'sales.orders.order_confirmed' AND created_at BETWEEN ? AND ? ORDER BY created_at`,
		from.UTC().Format(layout), to.UTC().Format(layout)); err != nil {
		return 0, 0, 0, err
	}
	times := make([]time.Time, len(stamps))
	for i, s := range stamps {
		if times[i], err = time.ParseInLocation(layout, s, time.UTC); err != nil {
			return 0, 0, 0, err
		}
	}
	gap, at = longestGap(from, to, times)
	return gap, at, len(times), nil
}

// longestGap returns the longest interval between consecutive times of
// from, times (sorted, within [from, to]) and to, and when it began (after
// from).
func longestGap(from, to time.Time, times []time.Time) (gap, at time.Duration) {
	last := from
	for _, t := range append(times, to) {
		if t.Sub(last) > gap {
			gap, at = t.Sub(last), last.Sub(from)
		}
		last = t
	}
	return gap, at
}

// afterFault waits until every node runs and every instance is healthy, and
// describes the confirmation gap since from.
func (c *chaos) afterFault(ctx context.Context, from time.Time) (string, error) {
	if _, err := c.p.WaitClusterRunning(ctx, 3*time.Minute); err != nil {
		return "", err
	}
	if err := c.waitHealthy(ctx, 90*time.Second); err != nil {
		return "", err
	}
	to := time.Now()
	gap, at, n, err := c.confirmationGap(ctx, from, to)
	if err != nil {
		return "", fmt.Errorf("reading the confirmations: %w", err)
	}
	return fmt.Sprintf("confirmation gap %.1fs (from +%.1fs; %d confirmed in the %.0fs of fault and recovery)", gap.Seconds(), at.Seconds(), n, to.Sub(from).Seconds()), nil
}

// awaitConsumers waits until every service's queue has as many consumers as
// the service runs instances (the management API's counts lag a few
// seconds), and returns how long that took.
func (c *chaos) awaitConsumers(ctx context.Context, within time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		qs, err := c.p.Broker.Queues(ctx, c.p.Vhost)
		var missing []string
		if err == nil {
			consumers := map[string]int{}
			for _, q := range qs {
				consumers[q.Name] = q.Consumers
			}
			for _, svc := range c.p.Services() {
				if n, want := consumers[svc.Name], len(svc.Instances()); n != want {
					missing = append(missing, fmt.Sprintf("%s %d of %d", svc.Name, n, want))
				}
			}
			if len(missing) == 0 {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > within || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("consumers after %v: %s %v", within, strings.Join(missing, ", "), err)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// queueReplicas describes the platform's queues: how many are quorum queues
// with a replica on every node, and those that are not.
func (c *chaos) queueReplicas(ctx context.Context) (string, []violation, error) {
	var qs []struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Members []string `json:"members"`
	}
	if err := c.p.Broker.API(ctx, "GET", "/api/queues/"+url.PathEscape(c.p.Vhost)+"?columns=name,type,members", nil, &qs); err != nil {
		return "", nil, err
	}
	var problems []violation
	ok := 0
	for _, q := range qs {
		if q.Type == "quorum" && len(q.Members) == len(c.p.Nodes) {
			ok++
			continue
		}
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("queue %s is a %s queue with %d members, want quorum on %d nodes", q.Name, q.Type, len(q.Members), len(c.p.Nodes))})
	}
	return fmt.Sprintf("%d of %d queues are quorum queues with a replica on each of the %d nodes", ok, len(qs), len(c.p.Nodes)), problems, nil
}

// nodeKill SIGKILLs the node that leads the most queues and restarts it once
// the platform has run without it for nodeDown; then another.
func nodeKill(ctx context.Context, c *chaos) (string, []violation, error) {
	var notes []string
	var prev *platform.RabbitNode
	from := time.Now()
	for i := range 2 {
		if i > 0 {
			sleep(ctx, 5*time.Second)
		}
		n, leads, err := c.leadingNode(ctx, prev)
		if err != nil {
			return "", nil, err
		}
		t := time.Now()
		if err := n.Kill(ctx); err != nil {
			return "", nil, err
		}
		sleep(ctx, c.nodeDown())
		if err := n.Start(ctx); err != nil {
			return "", nil, err
		}
		down := time.Since(t)
		rejoined, err := c.p.WaitClusterRunning(ctx, 3*time.Minute)
		if err != nil {
			return "", nil, err
		}
		notes = append(notes, fmt.Sprintf("%s (leader of %d queues) down %.0fs, all nodes running %.1fs after its restart", n.Name, leads, down.Seconds(), rejoined.Seconds()))
		prev = n
	}
	gap, err := c.afterFault(ctx, from)
	if err != nil {
		return "", nil, err
	}
	return gap + "; SIGKILLed and restarted: " + strings.Join(notes, "; then "), nil, nil
}

// nodeStop stops the RabbitMQ application of the node that leads the most
// queues (rabbitmqctl stop_app: its clients are disconnected, its queues'
// leadership moves), keeps it stopped for nodeDown, and starts it again.
func nodeStop(ctx context.Context, c *chaos) (string, []violation, error) {
	n, leads, err := c.leadingNode(ctx, nil)
	if err != nil {
		return "", nil, err
	}
	from := time.Now()
	if _, err := n.Ctl(ctx, "stop_app"); err != nil {
		return "", nil, err
	}
	stopped := time.Since(from)
	sleep(ctx, c.nodeDown())
	if _, err := n.Ctl(ctx, "start_app"); err != nil {
		return "", nil, err
	}
	down := time.Since(from)
	gap, err := c.afterFault(ctx, from)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%s; %s (leader of %d queues) stopped gracefully (stop_app in %.1fs), down %.0fs, start_app",
		gap, n.Name, leads, stopped.Seconds(), down.Seconds()), nil, nil
}

// partition cuts the node that leads the most queues off from the other two:
// on it, the others' Erlang cookies are set to a wrong one (no connection
// either way passes the handshake) and its connections to them are dropped.
// With pause_minority it pauses (its RabbitMQ application stops, its clients
// reconnect to the majority); the two keep serving. After nodeDown the
// cookies are restored: it sees the majority again, resumes and rejoins.
func partition(ctx context.Context, c *chaos) (string, []violation, error) {
	n, leads, err := c.leadingNode(ctx, nil)
	if err != nil {
		return "", nil, err
	}
	var others []string
	for _, o := range c.p.Nodes {
		if o != n {
			others = append(others, "'"+o.Name+"'")
		}
	}
	list := "[" + strings.Join(others, ",") + "]"
	from := time.Now()
	if _, err := n.Ctl(ctx, "eval", "Others = "+list+", [erlang:set_cookie(N, sagittarius_chaos_partition) || N <- Others], "+
		"[erlang:disconnect_node(N) || N <- Others], ok."); err != nil {
		return "", nil, err
	}
	// pause_minority: the lone node stops its RabbitMQ application.
	paused := time.Duration(-1)
	for time.Since(from) < c.nodeDown()+30*time.Second && ctx.Err() == nil {
		out, err := n.Ctl(ctx, "eval", "rabbit:is_running().")
		if err == nil && strings.TrimSpace(out) == "false" {
			paused = time.Since(from)
			break
		}
		sleep(ctx, 500*time.Millisecond)
	}
	var problems []violation
	if paused < 0 {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("%s cut off from the cluster did not pause (pause_minority)", n.Name)})
	}
	sleep(ctx, c.nodeDown()-time.Since(from))
	cut := time.Since(from)
	if _, err := n.Ctl(ctx, "eval", "[erlang:set_cookie(N, erlang:get_cookie()) || N <- "+list+"], ok."); err != nil {
		return "", nil, err
	}
	rejoined, err := c.p.WaitClusterRunning(ctx, 3*time.Minute)
	if err != nil {
		return "", problems, err
	}
	gap, err := c.afterFault(ctx, from)
	if err != nil {
		return "", problems, err
	}
	return fmt.Sprintf("%s; %s (leader of %d queues) cut off %.0fs, paused after %.1fs (pause_minority; the other two served), resumed and running %.1fs after the heal",
		gap, n.Name, leads, cut.Seconds(), paused.Seconds(), rejoined.Seconds()), problems, nil
}

// instanceKill SIGKILLs one instance of every domain service at once; the
// other instance of each serves alone (the gateway stops sending to the dead
// ones) for nodeDown; then they are restarted.
func instanceKill(ctx context.Context, c *chaos) (string, []violation, error) {
	if len(c.p.Nodes) < 3 {
		return "", nil, errNoCluster
	}
	from := time.Now()
	var killed []string
	for _, svc := range c.p.Services() {
		if len(svc.Ports) < 2 {
			return "", nil, fmt.Errorf("%s runs %d instance(s), want 2", svc.Dir, len(svc.Ports))
		}
		in := svc.InstanceOn(svc.Ports[0])
		if in == nil {
			return "", nil, fmt.Errorf("%s has no instance on port %d", svc.Dir, svc.Ports[0])
		}
		if err := in.Kill(); err != nil {
			return "", nil, err
		}
		killed = append(killed, svc.Dir)
	}
	sleep(ctx, c.nodeDown())
	for _, svc := range c.p.Services() {
		if _, err := svc.StartOn(ctx, svc.Ports[0]); err != nil {
			return "", nil, err
		}
	}
	gap, err := c.afterFault(ctx, from)
	if err != nil {
		return "", nil, err
	}
	var problems []violation
	consuming, err := c.awaitConsumers(ctx, 60*time.Second)
	if err != nil {
		problems = append(problems, violation{kindInvariant, err.Error()})
	}
	return fmt.Sprintf("%s; one of the 2 instances of each of %s SIGKILLed, the other alone for %.0fs, then restarted (all consuming again %.1fs later)",
		gap, strings.Join(killed, ", "), c.nodeDown().Seconds(), consuming.Seconds()), problems, nil
}
