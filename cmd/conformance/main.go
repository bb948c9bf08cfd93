// Command conformance audits a running Sagittarius platform against the
// architecture guideline, like an outside reviewer (internal/conformance):
//
//   - traffic: binds its own exclusive queue (audit.conformance-<random>) to
//     the fanout exchange sagittarius-a and checks every message for
//     -duration or -messages: message_id = uuid, type pattern, app_id,
//     delivery mode 2, content type, payload uuid/fired_at/entity, headers,
//     and the payload against the publisher's AsyncAPI manifest;
//   - topology: through the RabbitMQ management API, the exchange (fanout,
//     durable), the queue names, what is bound to sagittarius-a, dead-letter
//     targets, every service queue;
//   - paths: every path of the OpenAPI manifests, and every path reached by
//     following HAL links from the gateway root, against the resource naming
//     rules; each service's served manifests against the committed ones.
//
// It prints every violation and exits 1 when there is any, 2 when it cannot
// audit (broker or gateway unreachable). The manifests are the ones compiled
// in (the repository's contracts/), or -contracts DIR.
//
//	go run ./cmd/conformance -amqp amqp://admin:pw@127.0.0.1:5672/sagittarius \
//	    -management http://admin:pw@127.0.0.1:15672 -gateway http://127.0.0.1:8080 -duration 30s
//
// scripts/conformance fills these in from the local infrastructure's secrets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/conformance"
)

// errAudit means the audit could not run (as opposed to finding violations).
var errAudit = errors.New("cannot audit")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	case n > 0:
		fmt.Fprintf(os.Stdout, "FAIL: %d violations\n", n)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "PASS: no violation")
}

// run audits and returns the number of violations.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (int, error) {
	fl := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fl.SetOutput(stdout)
	amqpURL := fl.String("amqp", getenv("CONFORMANCE_AMQP_URL"), "AMQP URL with the platform's vhost, allowed to bind a queue to sagittarius-a (env CONFORMANCE_AMQP_URL)")
	api := fl.String("management", getenv("CONFORMANCE_RABBIT_API"), "RabbitMQ management API base URL with credentials (env CONFORMANCE_RABBIT_API)")
	vhost := fl.String("vhost", "", "the platform's vhost (default: the path of -amqp)")
	gateway := fl.String("gateway", orDefault(getenv("PUBLIC_BASE_URL"), "http://127.0.0.1:8080"), "the gateway's URL (env PUBLIC_BASE_URL)")
	dir := fl.String("contracts", "", "directory of the manifests (openapi/, asyncapi/); default: the ones compiled in")
	duration := fl.Duration("duration", 30*time.Second, "how long to watch the traffic")
	maxMessages := fl.Int("messages", 0, "stop watching after this many messages (0: watch for -duration)")
	minMessages := fl.Int("min-messages", 0, "fail when fewer messages were seen (an idle platform proves nothing)")
	maxPages := fl.Int("max-pages", 500, "how many HAL documents the crawl fetches at most")
	skip := fl.String("skip", "", "comma-separated checks to skip: traffic, topology, paths")
	secrets := fl.String("secrets", getenv("SAGITTARIUS_SECRETS"), "folder of the identity secrets written by scripts/up (env SAGITTARIUS_SECRETS): the crawl reads as staff with the demo client's token; unset: anonymously")
	if err := fl.Parse(args); err != nil {
		return 0, err
	}
	skipped := strings.Split(*skip, ",")

	var fsys fs.FS = manifests.FS
	if *dir != "" {
		fsys = os.DirFS(*dir)
	}
	rules, services, err := conformance.FromManifests(fsys)
	if err != nil {
		return 0, fmt.Errorf("%w: manifests: %v", errAudit, err)
	}
	total := 0
	report := func(title string, vs []conformance.Violation) {
		fmt.Fprintf(stdout, "== %s: %d violations\n", title, len(vs))
		for _, v := range vs {
			fmt.Fprintln(stdout, "  ", v)
		}
		total += len(vs)
	}

	// Start watching first, so the traffic caused by the crawl is seen too.
	var w *conformance.Watcher
	if !slices.Contains(skipped, "traffic") {
		if *amqpURL == "" {
			return 0, fmt.Errorf("%w: -amqp (or CONFORMANCE_AMQP_URL) is required, or -skip traffic", errAudit)
		}
		w, err = conformance.Watch(ctx, conformance.WatchOptions{URL: *amqpURL, Max: *maxMessages}, rules)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errAudit, err)
		}
		fmt.Fprintf(stdout, "watching %s through queue %s for %s\n", "sagittarius-a", w.Queue(), *duration)
	}
	deadline := time.Now().Add(*duration)

	if !slices.Contains(skipped, "topology") {
		if *api == "" {
			return 0, fmt.Errorf("%w: -management (or CONFORMANCE_RABBIT_API) is required, or -skip topology", errAudit)
		}
		vh := *vhost
		if vh == "" {
			vh = vhostOf(*amqpURL)
		}
		vs, err := conformance.Topology(ctx, conformance.TopologyOptions{API: *api, VHost: vh, Services: services})
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errAudit, err)
		}
		report("topology of vhost "+vh, vs)
	}

	if !slices.Contains(skipped, "paths") {
		vs, err := conformance.ManifestPaths(fsys)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errAudit, err)
		}
		report("paths of the OpenAPI manifests", vs)
		client := &http.Client{Timeout: 10 * time.Second}
		if *secrets != "" {
			source, err := authclient.DemoSource(strings.TrimSuffix(*gateway, "/")+"/identity/oauth", *secrets)
			if err != nil {
				return 0, fmt.Errorf("%w: %v", errAudit, err)
			}
			client.Transport = &authclient.Transport{Source: source}
		}
		rep, err := conformance.Crawl(ctx, conformance.CrawlOptions{Gateway: *gateway, MaxPages: *maxPages, Committed: fsys, Client: client})
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errAudit, err)
		}
		report(fmt.Sprintf("HAL crawl from %s (%d documents, %d paths, %d served manifests compared)", *gateway, rep.Pages, len(rep.Paths), rep.Contracts), rep.Violations)
	}

	if w != nil {
		select {
		case <-ctx.Done():
		case <-w.Done():
		case <-time.After(time.Until(deadline)):
		}
		r := w.Stop()
		report(fmt.Sprintf("traffic on sagittarius-a (%d messages: %s)", r.Messages, strings.Join(r.TypeCounts(), ", ")), r.Violations)
		if r.Messages < *minMessages {
			fmt.Fprintf(stdout, "   [traffic] saw %d messages, want at least %d (-min-messages)\n", r.Messages, *minMessages)
			total++
		}
	}
	return total, nil
}

func vhostOf(amqpURL string) string {
	u, err := url.Parse(amqpURL)
	if err != nil || strings.Trim(u.Path, "/") == "" {
		return "/"
	}
	v, _ := url.PathUnescape(strings.TrimPrefix(u.Path, "/"))
	return v
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
