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
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
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
	messages int
	size     int
	inflight int
	prefetch int
	repeat   int
	out      io.Writer
	log      *slog.Logger
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	suites := fs.String("suite", "bus", "comma-separated suites to run: bus")
	cfg := config{out: stdout}
	fs.IntVar(&cfg.messages, "messages", 20000, "messages per measurement")
	fs.IntVar(&cfg.size, "size", 600, "entity size in bytes (JSON)")
	fs.IntVar(&cfg.inflight, "inflight", 256, "publisher confirms in flight")
	fs.IntVar(&cfg.prefetch, "prefetch", 200, "consumer prefetch")
	fs.IntVar(&cfg.repeat, "repeat", 5, "runs of each side of a comparison, alternating; medians are reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.amqpURL = getenv("SAGITTARIUS_TEST_AMQP_URL")
	cfg.apiURL = getenv("SAGITTARIUS_TEST_RABBIT_API")
	cfg.mysqlDSN = getenv("SAGITTARIUS_TEST_MYSQL_DSN")
	if cfg.amqpURL == "" || cfg.apiURL == "" || cfg.mysqlDSN == "" {
		return fmt.Errorf("SAGITTARIUS_TEST_AMQP_URL, SAGITTARIUS_TEST_RABBIT_API and SAGITTARIUS_TEST_MYSQL_DSN must be set (scripts/bench sets them)")
	}
	cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range strings.Split(*suites, ",") {
		switch strings.TrimSpace(s) {
		case "bus":
			if err := benchBus(ctx, cfg); err != nil {
				return fmt.Errorf("suite bus: %w", err)
			}
		default:
			return fmt.Errorf("unknown suite %q", s)
		}
	}
	return nil
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
