package conformance_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sagittarius-a/sagittarius/internal/conformance"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func rulesOf(vs []conformance.Violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return strings.Join(out, "\n")
}

func TestCrawlOfAConformingPlatform(t *testing.T) {
	gw := gateway(t, fixture.NewAPI, nil)
	rep, err := conformance.Crawl(context.Background(), conformance.CrawlOptions{Gateway: gw, Committed: manifests(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) > 0 {
		t.Fatalf("violations:\n%s", rulesOf(rep.Violations))
	}
	want := []string{"/", "/widgets/v1", "/widgets/v1/contracts", "/widgets/v1/widgets", "/widgets/v1/widgets/00000000-0000-4000-8000-000000000001"}
	if strings.Join(rep.Paths, " ") != strings.Join(want, " ") {
		t.Errorf("visited %v, want %v (templated links, the portal and the manifests are not crawled)", rep.Paths, want)
	}
	if rep.Contracts != 2 {
		t.Errorf("%d served manifests compared, want 2", rep.Contracts)
	}
}

func TestCrawlFindsBreaks(t *testing.T) {
	gw := gateway(t, fixture.NewAPI, func(mux *http.ServeMux, base string) {
		mux.HandleFunc("GET /widgets/v1/getWidgets", func(w http.ResponseWriter, r *http.Request) {
			hal.Write(w, r, 200, map[string]any{"_links": map[string]any{"self": map[string]string{"href": base + "/widgets/v1/getWidgets"}}})
		})
		mux.HandleFunc("GET /widgets/v1/widget-of-the-day", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"cog"}`))
		})
		mux.HandleFunc("GET /links/", func(w http.ResponseWriter, r *http.Request) {
			hal.Write(w, r, 200, map[string]any{"_links": map[string]any{
				"self":     map[string]string{"href": base + "/links/"},
				"verb":     map[string]string{"href": base + "/widgets/v1/getWidgets"},
				"singular": map[string]string{"href": base + "/widgets/v1/widget-of-the-day"},
				"deep":     map[string]string{"href": base + "/widgets/v1/widgets/1/parts/2/screws"},
				"gone":     map[string]string{"href": base + "/widgets/v1/gone"},
			}})
		})
	})

	stale := manifests(t)
	stale["openapi/widgets.yaml"] = &fstest.MapFile{Data: []byte("openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {}\n")}
	rep, err := conformance.Crawl(context.Background(), conformance.CrawlOptions{Gateway: gw + "/links", Committed: stale})
	if err != nil {
		t.Fatal(err)
	}
	got := rulesOf(rep.Violations)
	for _, want := range []string{
		"[resource-naming] path /widgets/v1/getWidgets",
		"[resource-naming] path /widgets/v1/widget-of-the-day",
		"[resource-naming] path /widgets/v1/widgets/1/parts/2/screws",
		"[hal] GET /widgets/v1/widget-of-the-day",
		"[link] GET /widgets/v1/gone",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations:\n%s\nwant %q", got, want)
		}
	}
}

func TestCrawlComparesServedManifests(t *testing.T) {
	gw := gateway(t, fixture.NewAPI, nil)
	stale := manifests(t)
	stale["openapi/widgets.yaml"] = &fstest.MapFile{Data: []byte("openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {}\n")}
	delete(stale, "asyncapi/widgets.yaml")
	rep, err := conformance.Crawl(context.Background(), conformance.CrawlOptions{Gateway: gw, Committed: stale})
	if err != nil {
		t.Fatal(err)
	}
	got := rulesOf(rep.Violations)
	if !strings.Contains(got, "serves a different openapi than the committed contracts/openapi/widgets.yaml") ||
		!strings.Contains(got, "serves asyncapi, but no asyncapi/widgets.yaml is committed") {
		t.Errorf("violations:\n%s", got)
	}
}

func TestManifestPaths(t *testing.T) {
	fsys := fstest.MapFS{"openapi/x.yaml": &fstest.MapFile{Data: []byte(`openapi: 3.0.3
paths:
  /v1/orders: {}
  /v1/orders/{id}: {}
  /v1/createOrder: {}
  /v1/order/{id}: {}
`)}}
	vs, err := conformance.ManifestPaths(fsys)
	if err != nil {
		t.Fatal(err)
	}
	got := rulesOf(vs)
	if len(vs) != 2 || !strings.Contains(got, "/v1/createOrder") || !strings.Contains(got, "/v1/order/{id}") {
		t.Errorf("violations:\n%s", got)
	}
}
