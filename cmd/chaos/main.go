// Command chaos proves, on the whole running platform, that faults lose
// nothing and do nothing twice. It is run by scripts/chaos.
//
// It starts a private platform (internal/platform: its own MariaDB server and
// RabbitMQ node on free ports under a temporary folder, provisioned like
// production with least-privilege users, every service as a process, each
// reaching the broker through a TCP proxy of its own), places a steady stream
// of orders through the gateway (confirmed, shipped, delivered, out of stock,
// declined, cancelled by the customer), and injects one fault scenario at a
// time:
//
//	baseline          no fault
//	broker-kill       the broker killed with SIGKILL and restarted, several times
//	service-kill      each service (and the gateway) killed with SIGKILL while busy, and restarted
//	two-instances     two instances of a service at once, one killed mid-load
//	database-restart  MariaDB killed and restarted: every API answers 503 problem+json meanwhile
//	broker-link       a service's link to the broker cut, and black-holed, then restored
//	poison            malformed events published on sagittarius-a: dead-lettered with a reason
//	handler-fault     payments failing for one order (dead-lettered, kept in its failed messages, retried through their API after the repair)
//	                  and failing twice for another (retried)
//
// After each scenario it waits for quiescence (queues empty, outboxes sent,
// inboxes still) and checks the invariants from each service's API and
// database (see check.go). It prints one line per scenario and a final line
// "N orders, L lost, D duplicated effects, K dead-lettered", and exits 1 on
// any violation.
//
// With -cluster it runs on a three-node RabbitMQ cluster with two instances
// of every service, and its scenarios are those of cluster.go.
//
// usage: chaos [-short] [-cluster] [-scenarios a,b] [-rate n] [-orders n] [-keep] [-queue-type classic|quorum]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	switch {
	case errors.Is(err, errViolations):
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// errViolations is returned by run when an invariant was violated (already
// reported on stdout).
var errViolations = errors.New("invariants violated")

// options are the command-line settings.
type options struct {
	short      bool
	scenarios  []string
	rate       float64       // orders placed per second
	orders     int           // minimum orders per scenario
	brokerKill int           // broker kills in broker-kill
	dbDown     time.Duration // how long the database stays down
	blackhole  time.Duration // how long a link stays black-holed
	queueType  string
	seed       uint64
	keep       bool
	race       bool
	root       string
	dataDir    string
	verbose    bool
	cluster    bool // a three-node RabbitMQ cluster, two instances of every service (cluster.go)
}

func parseOptions(args []string, getenv func(string) string, out io.Writer) (options, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(out)
	o := options{}
	var scenarios string
	fs.BoolVar(&o.short, "short", false, "the short form (CI): fewer orders, each scenario once, shorter outages")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run, in this order (default: every scenario of the form)")
	fs.BoolVar(&o.cluster, "cluster", false, "the cluster form: a three-node RabbitMQ cluster (quorum queues), two instances of every service, node faults")
	fs.Float64Var(&o.rate, "rate", 0, "orders placed per second (default 5, short 4)")
	fs.IntVar(&o.orders, "orders", 0, "at least this many orders per scenario (default 80, short 20)")
	fs.IntVar(&o.brokerKill, "broker-kills", 0, "broker kills in broker-kill (default 4, short 2)")
	fs.DurationVar(&o.dbDown, "db-down", 0, "how long the database stays down (default 40s, short 6s)")
	fs.DurationVar(&o.blackhole, "blackhole", 0, "how long a link stays black-holed (default 50s, short 12s)")
	fs.StringVar(&o.queueType, "queue-type", "classic", "QUEUE_TYPE of the services: classic or quorum")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the shopper's choices")
	fs.BoolVar(&o.keep, "keep", false, "keep the data folder (databases, broker data, logs) at the end")
	fs.BoolVar(&o.race, "race", false, "build the services with the race detector")
	fs.StringVar(&o.dataDir, "data", "", "data folder (default: a new temporary folder)")
	fs.BoolVar(&o.verbose, "v", false, "print every step")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	def := func(v *float64, long, short float64) {
		if *v == 0 {
			*v = long
			if o.short {
				*v = short
			}
		}
	}
	def(&o.rate, 5, 4)
	n := float64(o.orders)
	def(&n, 80, 20)
	o.orders = int(n)
	k := float64(o.brokerKill)
	def(&k, 4, 2)
	o.brokerKill = int(k)
	if o.dbDown == 0 {
		o.dbDown = map[bool]time.Duration{false: 40 * time.Second, true: 6 * time.Second}[o.short]
	}
	if o.blackhole == 0 {
		o.blackhole = map[bool]time.Duration{false: 50 * time.Second, true: 12 * time.Second}[o.short]
	}
	if scenarios == "" {
		scenarios = strings.Join(scenarioNames(), ",")
		if o.cluster {
			scenarios = strings.Join(clusterScenarioNames(), ",")
		}
	}
	if o.cluster {
		o.queueType = "quorum"
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if findScenario(s) == nil {
			return o, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(append(scenarioNames(), clusterScenarioNames()...), ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	if o.queueType != "classic" && o.queueType != "quorum" {
		return o, fmt.Errorf("-queue-type %q: want classic or quorum", o.queueType)
	}
	o.root = getenv("SAGITTARIUS_ROOT")
	if o.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return o, err
		}
		o.root = wd
	}
	if _, err := os.Stat(filepath.Join(o.root, "scripts", "services.conf")); err != nil {
		return o, fmt.Errorf("run from the repository root or set SAGITTARIUS_ROOT: %w", err)
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	// The driver logs every connection the database restart breaks: expected here.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	o, err := parseOptions(args, getenv, stdout)
	if err != nil {
		return err
	}
	c, err := newChaos(ctx, o, stdout)
	if err != nil {
		return err
	}
	return c.run(ctx)
}
