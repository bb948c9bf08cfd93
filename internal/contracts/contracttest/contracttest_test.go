package contracttest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/contracttest"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// platform writes the fixture's manifests into a fresh root and serves the
// widgets API the way the gateway does: under /widgets.
func platform(t *testing.T) (*contracttest.Contracts, *fixture.API, string) {
	t.Helper()
	root := t.TempDir()
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	for _, s := range []contracts.Service{api.Service(), fixture.Gadgets()} {
		m, err := contracts.Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, "contracts", "openapi", s.Dir+".yaml"), m.OpenAPI)
		write(t, filepath.Join(root, "contracts", "asyncapi", s.Dir+".yaml"), m.AsyncAPI)
	}
	c, err := contracttest.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	rt := api.Routes()
	if _, err := contracts.Mount(rt, api.Service(), hal.MustBase("http://gw").Join("widgets", "v1")); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/widgets/", http.StripPrefix("/widgets", rt))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, api, srv.URL
}

func write(t *testing.T, path string, doc []byte) {
	t.Helper()
	y, err := contracts.ToYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, y, 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, client *http.Client, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}

func TestDocumentedAnswersPass(t *testing.T) {
	c, _, base := platform(t)
	client := &http.Client{Transport: c.Transport(nil)}
	for _, r := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/widgets/v1", "", 200},
		{"POST", "/widgets/v1/widgets", `{"name":"cog","price":{"amount":250,"currency":"EUR"}}`, 201},
		{"POST", "/widgets/v1/widgets", `{"name":""}`, 422},
		{"POST", "/widgets/v1/widgets", `{`, 400},
		{"GET", "/widgets/v1/widgets", "", 200},
		{"GET", "/widgets/v1/widgets?page=0", "", 400},
		{"GET", "/widgets/v1/widgets/00000000-0000-4000-8000-000000000001", "", 200},
		{"GET", "/widgets/v1/widgets/nope", "", 404},
		{"DELETE", "/widgets/v1/widgets/00000000-0000-4000-8000-000000000001", "", 204},
		{"GET", "/widgets/v1/contracts", "", 200},
		{"GET", "/widgets/v1/contracts/openapi", "", 200},
		{"GET", "/widgets/v1/contracts/nope", "", 404},
	} {
		if got := do(t, client, r.method, base+r.path, r.body); got != r.status {
			t.Errorf("%s %s: %d, want %d", r.method, r.path, got, r.status)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if cov := c.Coverage(); len(cov) < 10 {
		t.Errorf("coverage %v", cov)
	}
}

func TestUndocumentedFieldFails(t *testing.T) {
	c, api, base := platform(t)
	api.Extra = true // the handler now sends "colour", which the contract does not list
	client := &http.Client{Transport: c.Transport(nil)}
	do(t, client, "POST", base+"/widgets/v1/widgets", `{"name":"cog","price":{"amount":250,"currency":"EUR"}}`)
	err := c.Err()
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("Err() = %v, want a complaint about colour", err)
	}
}

func TestUndocumentedStatusAndOperationFail(t *testing.T) {
	c, _, _ := platform(t)
	h := http.Header{"Content-Type": {"application/problem+json"}}
	problem := []byte(`{"type":"about:blank","title":"Conflict","status":409}`)
	if err := c.CheckResponse("GET", "/widgets/v1/widgets/x", 409, h, problem); err == nil || !strings.Contains(err.Error(), "not documented") {
		t.Errorf("undocumented status: %v", err)
	}
	if err := c.CheckResponse("PUT", "/widgets/v1/widgets/x", 405, h, problem); err != nil {
		t.Errorf("405 on a documented path: %v", err)
	}
	if err := c.CheckResponse("GET", "/widgets/v1/gizmos", 200, h, problem); err == nil {
		t.Error("undocumented operation passed")
	}
	if err := c.CheckResponse("GET", "/widgets/v1/gizmos", 404, h, []byte(`{"type":"about:blank","title":"Not Found","status":404}`)); err != nil {
		t.Errorf("the router's 404 problem for an unknown path: %v", err)
	}
	if err := c.CheckResponse("GET", "/widgets/v1/widgets/x", 404, http.Header{"Content-Type": {"text/plain"}}, []byte("no")); err == nil {
		t.Error("a text/plain error passed")
	}
}

func TestCheckEvent(t *testing.T) {
	c, _, _ := platform(t)
	w := fixture.Widget{ID: "00000000-0000-4000-8000-000000000001", Name: "cog", Status: "active",
		Price: fixture.Money{Amount: 1, Currency: "EUR"}, Version: 1, CreatedAt: time.Now().UTC(), Links: hal.Links{}}
	w.Links.Set("self", "http://gw/widgets/v1/widgets/1")
	msg, err := fixture.WidgetAdded.New(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckEvent(msg.Type, msg.Body); err != nil {
		t.Fatalf("a real event failed: %v", err)
	}
	var payload map[string]any
	_ = json.Unmarshal(msg.Body, &payload)
	bad := func(f func(p map[string]any)) []byte {
		var p map[string]any
		_ = json.Unmarshal(msg.Body, &p)
		f(p)
		b, _ := json.Marshal(p)
		return b
	}
	for name, body := range map[string][]byte{
		"fired_at format": bad(func(p map[string]any) { p["fired_at"] = "2023-05-17 21:01:09" }),
		"no uuid":         bad(func(p map[string]any) { delete(p, "uuid") }),
		"uuid format":     bad(func(p map[string]any) { p["uuid"] = "42" }),
		"extra field":     bad(func(p map[string]any) { p["widget"].(map[string]any)["colour"] = "red" }),
		"missing field":   bad(func(p map[string]any) { delete(p["widget"].(map[string]any), "name") }),
		"wrong type":      bad(func(p map[string]any) { p["widget"].(map[string]any)["version"] = "1" }),
		"not json":        []byte("{"),
	} {
		if err := c.CheckEvent(msg.Type, body); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
	if err := c.CheckEvent("test.widgets.widget_exploded", msg.Body); err == nil {
		t.Error("an unknown event type passed")
	}
}
