package contracttest_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/contracttest"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// thing documents its link relations: self always, owner in some states.
type thing struct {
	ID    string    `json:"id"`
	Links hal.Links `json:"_links" links:"self,owner?"`
}

// TestDocumentedLinkRelations: a resource's links tag becomes its contract:
// an answer missing a required relation, or carrying one the manifest does
// not list, is caught; the documented ones pass.
func TestDocumentedLinkRelations(t *testing.T) {
	s := contracts.Service{Dir: "things", Name: "things", Title: "Things", Routes: []contracts.Route{
		{Method: "GET", Path: "/v1/things/{id}", Auth: auth.Anyone(), ID: "getThing", Summary: "One thing", Params: contracts.IDParam{},
			Handler: func(http.ResponseWriter, *http.Request) {}, Responses: []contracts.Response{{Status: 200, Body: thing{}}}},
	}}
	m, err := contracts.Generate(s)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	write(t, filepath.Join(root, "contracts", "openapi", "things.yaml"), m.OpenAPI)
	c, err := contracttest.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/hal+json"}}
	for _, tt := range []struct {
		name, body string
		ok         bool
	}{
		{"self only", `{"id":"1","_links":{"self":{"href":"http://gw/things/v1/things/1"}}}`, true},
		{"self and owner", `{"id":"1","_links":{"self":{"href":"http://gw/t/1"},"owner":{"href":"http://gw/o/1"}}}`, true},
		{"no self", `{"id":"1","_links":{"owner":{"href":"http://gw/o/1"}}}`, false},
		{"undocumented relation", `{"id":"1","_links":{"self":{"href":"http://gw/t/1"},"parent":{"href":"http://gw/p/1"}}}`, false},
	} {
		err := c.CheckResponse("GET", "/things/v1/things/1", 200, h, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
