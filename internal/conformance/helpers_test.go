package conformance_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
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

// gateway serves the fixture widgets API under /widgets behind a HAL root,
// with links built on its own URL; extra adds handlers to the root mux.
func gateway(t *testing.T, api func(base hal.Base) *fixture.API, extra func(mux *http.ServeMux, base string)) string {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := hal.MustBase(srv.URL)
	a := api(base)
	rt := a.Routes()
	if _, err := contracts.Mount(rt, a.Service(), base.Join("widgets", "v1")); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/widgets/", http.StripPrefix("/widgets", rt))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		links := hal.Links{}
		links.Set("self", srv.URL+"/")
		links.Set("widgets", srv.URL+"/widgets/v1")
		links.SetLink("docs", hal.Link{Href: srv.URL + "/docs/", Type: "text/html"})
		links.SetLink("search", hal.Link{Href: srv.URL + "/widgets/v1/widgets{?status}", Templated: true})
		hal.Write(w, r, http.StatusOK, struct {
			Links hal.Links `json:"_links"`
		}{links})
	})
	if extra != nil {
		extra(mux, srv.URL)
	}
	// One widget, so that an item is reachable.
	res, err := http.Post(srv.URL+"/widgets/v1/widgets", "application/json", strings.NewReader(`{"name":"cog","price":{"amount":1,"currency":"EUR"}}`))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("adding a widget: %v %v", err, res)
	}
	res.Body.Close()
	return srv.URL
}
