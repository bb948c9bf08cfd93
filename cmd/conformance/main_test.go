package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func noEnv(string) string { return "" }

func TestRunNeedsTheBroker(t *testing.T) {
	var out bytes.Buffer
	if _, err := run(context.Background(), []string{"-skip", "paths,topology"}, noEnv, &out); err == nil || !strings.Contains(err.Error(), "-amqp") {
		t.Errorf("without -amqp: %v", err)
	}
	if _, err := run(context.Background(), []string{"-skip", "paths,traffic"}, noEnv, &out); err == nil || !strings.Contains(err.Error(), "-management") {
		t.Errorf("without -management: %v", err)
	}
}

// TestRunPaths audits the paths of a fixture platform: its manifests and a
// crawl from its root, with the manifests given by -contracts.
func TestRunPaths(t *testing.T) {
	dir := t.TempDir()
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	m, err := contracts.Generate(api.Service())
	if err != nil {
		t.Fatal(err)
	}
	for kind, doc := range map[string][]byte{"openapi": m.OpenAPI, "asyncapi": m.AsyncAPI} {
		y, _ := contracts.ToYAML(doc)
		_ = os.MkdirAll(filepath.Join(dir, kind), 0o755)
		if err := os.WriteFile(filepath.Join(dir, kind, "widgets.yaml"), y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		links := hal.Links{}
		links.Set("self", "http://"+r.Host+"/")
		links.Set("bad", "http://"+r.Host+"/v1/getWidgets")
		hal.Write(w, r, http.StatusOK, struct {
			Links hal.Links `json:"_links"`
		}{links})
	}))
	defer srv.Close()
	var out bytes.Buffer
	n, err := run(context.Background(), []string{"-skip", "traffic,topology", "-contracts", dir, "-gateway", srv.URL}, noEnv, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || !strings.Contains(out.String(), "getWidgets") {
		t.Errorf("%d violations:\n%s", n, out.String())
	}
}
