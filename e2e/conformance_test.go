package e2e

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/conformance"
	"github.com/sagittarius-a/sagittarius/internal/contracts/contracttest"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// audit holds the contract and conformance checks of one run.
type audit struct {
	contracts *contracttest.Contracts
	watch     *conformance.Watcher
	services  []string
	manifests fs.FS
}

// startAudit loads the committed manifests, routes every request of the
// run through the contract check (httpClient: each answer is validated
// against the answering service's OpenAPI manifest, strictly) and starts
// watching sagittarius-a in the cluster's vhost (each event is validated
// against the guideline and the publisher's AsyncAPI manifest).
func startAudit(t *testing.T, c *Cluster) *audit {
	t.Helper()
	root := testinfra.RequireInfra(t).Root
	ct, err := contracttest.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	httpClient.Transport = ct.Transport(staffTransport{})
	t.Cleanup(func() { httpClient.Transport = staffTransport{} })
	manifests := os.DirFS(filepath.Join(root, "contracts"))
	rules, services, err := conformance.FromManifests(manifests)
	if err != nil {
		t.Fatal(err)
	}
	w, err := conformance.Watch(context.Background(), conformance.WatchOptions{URL: c.AMQPURL}, rules)
	if err != nil {
		t.Fatal(err)
	}
	a := &audit{contracts: ct, watch: w, services: services, manifests: manifests}
	t.Cleanup(func() { w.Stop() })
	return a
}

// testConformance checks, after the saga: every HTTP answer of the run
// against the manifests, every event of the run against the guideline and
// the manifests, the broker topology of the cluster's vhost, and the paths
// and served manifests reached by following links from the gateway root.
func testConformance(t *testing.T, c *Cluster, a *audit) {
	if err := a.contracts.Err(); err != nil {
		t.Errorf("answers that break the OpenAPI manifests:\n%v", err)
	}
	t.Logf("contract-checked answers: %d operations/statuses", len(a.contracts.Coverage()))

	r := a.watch.Stop()
	if r.Messages == 0 {
		t.Error("the audit saw no event on sagittarius-a")
	}
	for _, v := range r.Violations {
		t.Errorf("event: %v", v)
	}
	t.Logf("audited %d events: %v", r.Messages, r.TypeCounts())

	env := testinfra.RequireInfra(t)
	vs, err := conformance.Topology(context.Background(), conformance.TopologyOptions{API: env.RabbitAPI, VHost: c.Vhost, Services: a.services})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("topology: %v", v)
	}

	vs, err = conformance.ManifestPaths(a.manifests)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("manifest: %v", v)
	}
	rep, err := conformance.Crawl(context.Background(), conformance.CrawlOptions{Gateway: c.Gateway, Committed: a.manifests, MaxPages: 300,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: staffTransport{}}}) // the crawl reads as staff
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		t.Errorf("crawl: %v", v)
	}
	if rep.Contracts == 0 {
		t.Error("no service served its manifests at its contracts link")
	}
	t.Logf("crawled %d documents, %d paths; compared %d served manifests with the committed ones", rep.Pages, len(rep.Paths), rep.Contracts)
}
