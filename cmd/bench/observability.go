package main

// Suite "observability" (issue 13): what metrics and tracing cost the saga.
// The same saga load runs on three platform instances started one after the
// other in the same run (fresh databases and vhost each, so that no run
// inherits the tables of another):
//
//   - off: SAGITTARIUS_METRICS=off and no OTLP endpoint (no metric counted,
//     no span created);
//   - default: metrics on, traces exported over OTLP/HTTP to a sink in the
//     bench process, sampled at the platform's default (parent-based, one
//     new trace in ten);
//   - all: the same with OTEL_TRACES_SAMPLER=parentbased_always_on (every
//     span of every order exported).
//
// For each it reports confirmed orders/s, the services' CPU per order (the
// sum of the platform's processes), the whole machine's busy CPU per order,
// and the OTLP bytes exported per order; and the CPU per order of each mode
// against "off". The sink reads and discards what it receives (a trace
// backend's decoding runs elsewhere in production), so its own CPU is small
// but is part of the machine's figure. -obs-repeat runs the three modes
// several times, alternating their order; medians are reported.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
)

// obsConfig is the load of the observability suite.
type obsConfig struct {
	clients int  // concurrent closed-loop clients
	repeat  int  // rounds of the three modes
	bus     bool // also the bus part

	// busConfig, when set, instruments every bus the bench starts
	// (startBus): the observed side of the bus part.
	busConfig func(eventbus.Config) eventbus.Config
}

// obsFlags registers the suite's flags.
func obsFlags(fs *flag.FlagSet, c *obsConfig) {
	fs.IntVar(&c.clients, "obs-clients", 32, "observability: concurrent closed-loop clients of each saga run")
	fs.IntVar(&c.repeat, "obs-repeat", 1, "observability: rounds of the three modes (alternating their order); medians are reported")
	fs.BoolVar(&c.bus, "obs-bus", true, "observability: also the bus part (consuming and skipping with metrics and every span against neither; -messages, -repeat)")
}

// otlpSink accepts OTLP/HTTP trace exports and counts them.
type otlpSink struct {
	url             string
	requests, bytes atomic.Int64
	srv             *http.Server
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// obsRun is one saga run in one mode.
type obsRun struct {
	throughput, servicesCPU, machineCPU, otlpBytes float64 // orders/s; ms, ms, bytes per order
}

func benchObservability(ctx context.Context, cfg config) error {
	sink, err := startOTLPSink()
	if err != nil {
		return err
	}
	defer sink.srv.Close()
	modes := []struct {
		name, label string
		env         []string
	}{
		{"off", "metrics and traces off", []string{"SAGITTARIUS_METRICS=off"}},
		{"default", "metrics on, traces at the default sampling", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url}},
		{"all", "metrics on, every trace sampled", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url, "OTEL_TRACES_SAMPLER=parentbased_always_on"}},
	}
	if cfg.obs.bus {
		if err := obsBus(ctx, cfg, sink); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
	}
	runs := make([][]obsRun, len(modes))
	fmt.Fprintf(cfg.out, "\nobservability: the saga with %d clients on a fresh platform per mode, %d round(s)\n", cfg.obs.clients, cfg.obs.repeat)
	for round := range cfg.obs.repeat {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			m := modes[i]
			c := cfg
			c.serviceEnv = append(slices.Clone(cfg.serviceEnv), m.env...)
			r, err := obsSaga(ctx, c, sink)
			if err != nil {
				return fmt.Errorf("mode %s: %w", m.name, err)
			}
			fmt.Fprintf(cfg.out, "  round %d %-8s %7.1f orders/s  services %6.2f ms/order  machine %6.2f ms/order  OTLP %6.0f B/order\n",
				round+1, m.name, r.throughput, r.servicesCPU, r.machineCPU, r.otlpBytes)
			runs[i] = append(runs[i], r)
		}
	}
	med := func(rs []obsRun, f func(obsRun) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return medianOf(xs)
	}
	w := cfg.out
	fmt.Fprintf(w, "\nobservability cost (medians)\n")
	fmt.Fprintf(w, "%-44s %10s %16s %16s %12s %14s\n", "mode", "orders/s", "services ms/ord", "machine ms/ord", "OTLP B/ord", "machine vs off")
	off := med(runs[0], func(r obsRun) float64 { return r.machineCPU })
	for i, m := range modes {
		machine := med(runs[i], func(r obsRun) float64 { return r.machineCPU })
		delta := ""
		if i > 0 && off > 0 {
			delta = fmt.Sprintf("%+.1f%%", (machine/off-1)*100)
		}
		fmt.Fprintf(w, "%-44s %10.1f %16.2f %16.2f %12.0f %14s\n", m.label,
			med(runs[i], func(r obsRun) float64 { return r.throughput }),
			med(runs[i], func(r obsRun) float64 { return r.servicesCPU }), machine,
			med(runs[i], func(r obsRun) float64 { return r.otlpBytes }), delta)
	}
	fmt.Fprintf(w, "target: at most +5%% machine CPU per order with metrics on and traces at the default sampling\n")
	return nil
}

// obsSaga starts a platform with cfg.serviceEnv, runs the saga once and
// stops the platform.
func obsSaga(ctx context.Context, cfg config, sink *otlpSink) (r obsRun, err error) {
	p, err := startPlatform(ctx, cfg)
	if err != nil {
		return r, fmt.Errorf("platform: %w", err)
	}
	defer func() {
		if crashed := p.stop(); len(crashed) > 0 && err == nil {
			err = fmt.Errorf("services exited during the benchmark:\n%s", strings.Join(crashed, "\n"))
		}
	}()
	client := httpClient(cfg.obs.clients)
	fx, err := setupSaga(ctx, p, cfg.saga, client)
	if err != nil {
		return r, fmt.Errorf("saga setup: %w", err)
	}
	cpu := newCPUMeter(cfg, p)
	time.Sleep(2 * time.Second) // let the exporters send what the setup traced
	sc := cfg.saga
	sc.clients = cfg.obs.clients
	bytesBefore := sink.bytes.Load()
	res, err := runSaga(ctx, p, sc, fx, client, cpu)
	if err != nil {
		return r, err
	}
	time.Sleep(6 * time.Second) // the exporters send a batch at least every 5 s (OTEL_BSP_SCHEDULE_DELAY)
	n := float64(len(res.orders))
	r.throughput, r.machineCPU = res.throughput, res.machineCPUPerOrder
	for i, name := range res.cpuNames {
		if !strings.HasSuffix(name, "*") && res.cpuPerOrder[i] > 0 {
			r.servicesCPU += res.cpuPerOrder[i]
		}
	}
	if n > 0 {
		r.otlpBytes = float64(sink.bytes.Load()-bytesBefore) / n
	}
	return r, nil
}

// obsBus compares the bus consuming a typed event, and skipping events no
// handler wants, with metrics on and every span exported (to the sink),
// against the same bus with neither: the ratio is observed/plain.
func obsBus(ctx context.Context, cfg config, sink *otlpSink) error {
	url, dropVhost, err := newVhost(ctx, cfg)
	if err != nil {
		return fmt.Errorf("vhost: %w", err)
	}
	defer dropVhost()
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(eventbus.Exchange, "fanout", true, false, false, false, nil); err != nil {
		return err
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER": "always_on"}
	tel, err := telemetry.New(ctx, telemetry.Config{Service: "bench.consumer", Logger: cfg.log,
		Getenv: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return os.Getenv(k)
		}})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	fill := func(et eventbus.EventType[benchEntity]) error {
		if _, err := ch.QueueDeclare("bench.consumer", true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
			return err
		}
		msgs, err := makeMessages(ctx, et, cfg.messages, cfg.size)
		if err != nil {
			return err
		}
		_, err = plainPublish(ch, "", "bench.consumer", msgs, cfg.inflight)
		return err
	}
	run := func(et eventbus.EventType[benchEntity], observed bool, count func(eventbus.Stats) uint64) func() (float64, error) {
		return func() (float64, error) {
			if err := fill(et); err != nil {
				return 0, err
			}
			c := cfg
			if observed {
				c.obs.busConfig = tel.BusConfig
			}
			return busConsume(ctx, c, url, benchHappened, cfg.messages, count)
		}
	}
	handled := func(s eventbus.Stats) uint64 { return s.Handled }
	skipped := func(s eventbus.Stats) uint64 { return s.Unhandled }
	fmt.Fprintf(cfg.out, "\nobservability of the bus: %d messages of ~%d bytes per run, prefetch %d, median of %d runs\n",
		cfg.messages, cfg.size, cfg.prefetch, cfg.repeat)
	var results []result
	for _, c := range []struct {
		name string
		et   eventbus.EventType[benchEntity]
		n    func(eventbus.Stats) uint64
	}{
		{"bus consume, metrics + every span", benchHappened, handled},
		{"bus skip of unhandled events, metrics on", benchIgnored, skipped},
	} {
		r, err := compare(cfg, c.name, "the same, observability off", 0.95, run(c.et, false, c.n), run(c.et, true, c.n))
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if _, err := ch.QueueDelete("bench.consumer", false, false, false); err != nil {
		return err
	}
	printResults(cfg.out, "bus with observability against without", results)
	return nil
}
