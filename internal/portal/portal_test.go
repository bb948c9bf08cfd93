package portal_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/portal"
)

// manifests returns the fixture platform's manifests (the layout of contracts/).
func manifests(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys, err := fixture.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestPortalPages(t *testing.T) {
	h, err := portal.New(manifests(t), "/docs")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		path, ct string
		want     []string
	}{
		{"/docs/", "text/html", []string{"Widgets", "/docs/apis/widgets/", "/docs/events/", "choreography.svg"}},
		{"/docs/events/", "text/html", []string{"test.widgets.widget_added", "test.gadgets", "Example payload", "&#34;fired_at&#34;"}},
		{"/docs/choreography.svg", "image/svg+xml", []string{"<svg", "widget_added", "test.gadgets"}},
		{"/docs/apis/widgets/", "text/html", []string{"swagger", "/docs/apis/widgets/openapi.json"}},
		{"/docs/apis/widgets/openapi.json", "application/json", []string{`"openapi": "3.0.3"`}},
		{"/docs/apis/gadgets/asyncapi.json", "application/json", []string{`"asyncapi": "2.6.0"`}},
	} {
		res, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ct) {
			t.Errorf("%s: %d %s", c.path, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s lacks %q", c.path, w)
			}
		}
		if strings.HasSuffix(c.path, ".json") && !json.Valid(body) {
			t.Errorf("%s is not JSON", c.path)
		}
	}
	if res, _ := http.Get(srv.URL + "/docs/apis/nope/"); res.StatusCode != 404 {
		t.Errorf("unknown API: %d", res.StatusCode)
	}
}

func TestMapAndMarkdownShowEveryEdge(t *testing.T) {
	fsys := manifests(t)
	var docs []catalog.Doc
	for _, dir := range []string{"widgets", "gadgets"} {
		d, err := catalog.Parse(dir, fsys["asyncapi/"+dir+".yaml"].Data)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	c, err := catalog.Build(eventbus.Exchange, docs)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(portal.Map(c))
	for _, edge := range []string{"test.widgets.widget_added → test.gadgets", "test.gadgets.gadget_built → test.widgets"} {
		if !strings.Contains(svg, edge) {
			t.Errorf("map lacks the edge %s", edge)
		}
	}
	if !strings.Contains(svg, `stroke-dasharray`) { // widget_removed has no consumer
		t.Error("an unconsumed event is not drawn dashed")
	}
	if string(portal.Map(c)) != svg {
		t.Error("the map is not deterministic")
	}
	md := string(portal.EventsMarkdown(c))
	if !strings.Contains(md, "| `test.widgets.widget_removed` | test.widgets | `widget` | (none) |") {
		t.Errorf("markdown:\n%s", md)
	}
}

// The console is served with its assets, a policy that allows only the
// gateway's own origin, and no reference to another origin.
func TestConsole(t *testing.T) {
	h := portal.Console()
	for path, ct := range map[string]string{"/console/": "text/html", "/console/console.js": "javascript", "/console/console.css": "text/css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), ct) {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if b := rec.Body.String(); strings.Contains(b, "http://") || strings.Contains(b, "https://") || strings.Contains(b, "<script>") {
			t.Errorf("%s refers to another origin or inlines a script", path)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/console/" {
		t.Errorf("/console: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console/nope.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/console/nope.js: %d", rec.Code)
	}
}
