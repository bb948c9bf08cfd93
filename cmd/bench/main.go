// Command bench measures Sagittarius against baselines taken in the same run
// on the same broker and database, and prints each result as a ratio to its
// baseline. It is run by scripts/bench, which starts the infrastructure and
// exports the connection settings.
//
// Suite "bus" (the event bus, issue 2):
//   - confirmed persistent publishing through Bus.Publish against a plain
//     amqp091-go publisher keeping the same number of confirms in flight;
//   - consuming through the bus (no-op handler) against a plain amqp091-go
//     consumer with manual acks and the same prefetch;
//   - skipping events no handler wants against the plain consumer;
//   - the outbox relay against direct publishing through the bus.
//
// Suites "saga" and "api" (issue 5) run on one instance of the platform
// started for the benchmark: every service built from the working tree and
// started as a process on a free port, each with a fresh database, in a
// fresh vhost, behind its own gateway (never the ports of scripts/up).
//
// Suite "saga":
//   - orders placed per second through the gateway at steady state by
//     closed-loop clients (each places an order and waits until it is
//     confirmed), the latency from POST to order_confirmed (p50, p95, p99),
//     and what one order costs: events (outbox rows), deliveries (events x
//     queues), handler transactions (inbox rows) and database commits
//     (MariaDB's Com_commit, and the platform user's own commits);
//   - in the same run, the two physical limits: the broker's confirmed
//     fanout throughput into as many queues as the platform has, with plain
//     amqp091-go clients and messages of the saga's size, and the database's
//     commit rate with a plain client (one-row insert + commit); and the
//     saga's throughput as a fraction of the limit they imply:
//     min(broker msg/s / events per order, commits/s / commits per order).
//
// Suite "api": GET of one order and of a collection page through the
// gateway against the same request sent to the orders service's own port.
//
// Suite "observability" (observability.go): the saga's CPU per order with
// metrics and traces off, on at the default sampling, and on with every
// trace sampled.
// Suite "gateway": item reads through the gateway (rate limits on) against
// nginx proxying the same route, and the limiter's cost (gateway.go).
//
// With "saga" or "api", every service's resident memory (VmRSS) is reported
// at rest and at its peak under load.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == bareProxyArg {
		if err := runBareProxy(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench: bare proxy:", err)
			os.Exit(1)
		}
		return
	}
	// SIGTERM too: the platform's services are stopped on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	amqpURL  string // admin URL without vhost
	apiURL   string // management API base with credentials
	mysqlDSN string // admin DSN without database
	root     string // repository root (SAGITTARIUS_ROOT, or the working directory)
	messages int
	size     int
	inflight int
	prefetch int
	repeat   int
	out      io.Writer
	log      *slog.Logger

	saga            sagaConfig
	sagaClients     []int         // one saga phase per number of clients
	limitMessages   int           // messages per broker-limit run
	limitPublishers int           // publishing connections of the broker-limit run
	limitRepeat     int           // runs of each limit; medians are reported
	dbConns         []int         // connection counts of the database-limit runs
	dbDuration      time.Duration // length of one database-limit run
	apiClients      int           // concurrent readers of the api suite
	apiDuration     time.Duration // length of one api run
	serviceEnv      []string      // extra environment of every service process
	pprofBase       int           // if > 0, PPROF_ADDR=127.0.0.1:<pprofBase+i> for the i-th service
	keep            time.Duration // keep the platform running this long after the suites (for profiling by hand)
	keepLogs        bool          // keep the services' logs
	obs             obsConfig     // suite observability (observability.go)
	gatewayEnv      []string      // gateway suite: extra environment (e.g. authentication settings)
	gatewayHeaders  []string      // gateway suite: extra request headers ("Name: value")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	suites := fs.String("suite", "bus", "comma-separated suites to run: bus, saga, api, peers (or all), observability, gateway")
	cfg := config{out: stdout}
	obsFlags(fs, &cfg.obs)
	fs.IntVar(&cfg.messages, "messages", 20000, "messages per measurement")
	fs.IntVar(&cfg.size, "size", 600, "entity size in bytes (JSON)")
	fs.IntVar(&cfg.inflight, "inflight", 256, "publisher confirms in flight")
	fs.IntVar(&cfg.prefetch, "prefetch", 200, "consumer prefetch (the bus's default)")
	fs.IntVar(&cfg.repeat, "repeat", 5, "runs of each side of a comparison, alternating; medians are reported")
	sagaClients := fs.String("saga-clients", "8,32,128", "saga: comma-separated numbers of concurrent closed-loop clients, one timed phase each")
	fs.IntVar(&cfg.saga.orders, "saga-orders", 20000, "saga: at most this many orders")
	fs.DurationVar(&cfg.saga.duration, "saga-duration", 30*time.Second, "saga: at most this long after the warm-up")
	fs.DurationVar(&cfg.saga.warmup, "saga-warmup", 5*time.Second, "saga: not timed at the start")
	fs.IntVar(&cfg.saga.customers, "saga-customers", 20, "saga: customers orders are placed for")
	fs.IntVar(&cfg.saga.products, "saga-products", 1000, "saga: products (each order takes -saga-lines distinct ones at random; fewer means more orders contend for the same stock rows)")
	fs.IntVar(&cfg.saga.lines, "saga-lines", 2, "saga: lines per order")
	fs.DurationVar(&cfg.saga.poll, "saga-poll", 25*time.Millisecond, "saga: how often clients' orders are checked in the orders database (one query per poll, counted in the saga's statements; latencies come from the events' timestamps, not from the poll)")
	fs.IntVar(&cfg.limitMessages, "limit-messages", 20000, "broker limit: messages per run")
	fs.IntVar(&cfg.limitPublishers, "limit-publishers", 4, "broker limit: publishing connections (the saga's publishers: orders, inventory, payments, shipping)")
	fs.IntVar(&cfg.limitRepeat, "limit-repeat", 3, "runs of each limit; medians are reported")
	dbConns := fs.String("limit-db-conns", "16,64", "database limit: comma-separated connection counts (the bus runs 16 handlers per service; 4 services commit in the saga)")
	fs.DurationVar(&cfg.dbDuration, "limit-db-duration", 4*time.Second, "database limit: length of one run")
	fs.IntVar(&cfg.apiClients, "api-clients", 16, "api: concurrent readers")
	fs.DurationVar(&cfg.apiDuration, "api-duration", 3*time.Second, "api: length of one run")
	fs.IntVar(&cfg.pprofBase, "pprof-base", 0, "if set, every service gets PPROF_ADDR=127.0.0.1:<base+index in services.conf>")
	fs.BoolVar(&cfg.keepLogs, "keep-logs", false, "keep the services' logs (their folder is printed)")
	fs.DurationVar(&cfg.keep, "keep", 0, "keep the platform running this long after the suites (to profile it by hand)")
	fs.Func("service-env", "KEY=VALUE added to every service's environment (repeatable), e.g. GOGC=50", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		cfg.serviceEnv = append(cfg.serviceEnv, s)
		return nil
	})
	fs.Func("gateway-env", "gateway suite: KEY=VALUE added to the services' environment (repeatable)", func(s string) error {
		cfg.gatewayEnv = append(cfg.gatewayEnv, s)
		return nil
	})
	fs.Func("gateway-header", `gateway suite: "Name: value" sent with every read (repeatable), e.g. "Authorization: Bearer <token>"`, func(s string) error {
		cfg.gatewayHeaders = append(cfg.gatewayHeaders, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, c := range strings.Split(*sagaClients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-saga-clients: %q is not a positive number", c)
		}
		cfg.sagaClients = append(cfg.sagaClients, n)
	}
	for _, c := range strings.Split(*dbConns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-limit-db-conns: %q is not a positive number", c)
		}
		cfg.dbConns = append(cfg.dbConns, n)
	}
	if cfg.saga.lines < 1 || cfg.saga.lines > cfg.saga.products {
		return fmt.Errorf("-saga-lines %d: want 1 to -saga-products (%d)", cfg.saga.lines, cfg.saga.products)
	}
	cfg.root = getenv("SAGITTARIUS_ROOT")
	if cfg.root == "" {
		cfg.root = "."
	}
	cfg.amqpURL = getenv("SAGITTARIUS_TEST_AMQP_URL")
	cfg.apiURL = getenv("SAGITTARIUS_TEST_RABBIT_API")
	cfg.mysqlDSN = getenv("SAGITTARIUS_TEST_MYSQL_DSN")
	if cfg.amqpURL == "" || cfg.apiURL == "" || cfg.mysqlDSN == "" {
		return fmt.Errorf("SAGITTARIUS_TEST_AMQP_URL, SAGITTARIUS_TEST_RABBIT_API and SAGITTARIUS_TEST_MYSQL_DSN must be set (scripts/bench sets them)")
	}
	cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	want := map[string]bool{}
	for _, s := range strings.Split(*suites, ",") {
		switch s = strings.TrimSpace(s); s {
		case "bus", "saga", "api", "peers", "observability", "gateway":
			want[s] = true
		case "all":
			want["bus"], want["saga"], want["api"], want["peers"] = true, true, true, true
		default:
			return fmt.Errorf("unknown suite %q", s)
		}
	}
	printMachine(cfg.out)
	if want["bus"] {
		if err := benchBus(ctx, cfg); err != nil {
			return fmt.Errorf("suite bus: %w", err)
		}
	}
	if want["peers"] {
		if err := benchPeers(ctx, cfg, getenv); err != nil {
			return err
		}
	}
	if want["saga"] || want["api"] {
		if err := benchPlatform(ctx, cfg, want["saga"], want["api"]); err != nil {
			return err
		}
	}
	if want["observability"] {
		if err := benchObservability(ctx, cfg); err != nil {
			return fmt.Errorf("suite observability: %w", err)
		}
	}
	if want["gateway"] {
		if err := benchGateway(ctx, cfg); err != nil {
			return fmt.Errorf("suite gateway: %w", err)
		}
	}
	return nil
}

// printMachine says what the figures were measured on.
func printMachine(w io.Writer) {
	load, _ := os.ReadFile("/proc/loadavg")
	fields := strings.Fields(string(load))
	if len(fields) > 3 {
		fields = fields[:3]
	}
	fmt.Fprintf(w, "machine: %d CPUs, %s, load average %s (other work on this machine shares the CPUs)\n",
		runtime.NumCPU(), runtime.Version(), strings.Join(fields, " "))
}

// result is one measurement against its baseline.
type result struct {
	name, baseline string
	rate, base     float64 // per second, medians
	ratio          float64 // median of the per-run ratios rate/base
	target         float64 // minimum ratio, 0 for none
}

func printResults(w io.Writer, title string, rs []result) {
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintf(w, "%-44s %12s  %-34s %12s  %6s  %s\n", "measurement", "rate/s", "baseline", "rate/s", "ratio", "target")
	for _, r := range rs {
		ratio := r.ratio
		verdict := ""
		if r.target > 0 {
			verdict = fmt.Sprintf(">= %.2f ", r.target)
			if ratio >= r.target {
				verdict += "met"
			} else {
				verdict += "MISSED"
			}
		}
		fmt.Fprintf(w, "%-44s %12.0f  %-34s %12.0f  %6.2f  %s\n", r.name, r.rate, r.baseline, r.base, ratio, verdict)
	}
}

// compare runs baseline and subject cfg.repeat times each, alternating which
// goes first so that drifting load on the machine hits both alike, and
// returns the median rates and the median of the per-pair ratios.
func compare(cfg config, name, baseName string, target float64, baseline, subject func() (float64, error)) (result, error) {
	var bases, subjects, ratios []float64
	for i := range cfg.repeat {
		var b, s float64
		var err error
		if i%2 == 0 {
			if b, err = baseline(); err == nil {
				s, err = subject()
			}
		} else {
			if s, err = subject(); err == nil {
				b, err = baseline()
			}
		}
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", name, err)
		}
		bases, subjects, ratios = append(bases, b), append(subjects, s), append(ratios, s/b)
	}
	return result{name: name, baseline: baseName, rate: medianOf(subjects), base: medianOf(bases), ratio: medianOf(ratios), target: target}, nil
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
