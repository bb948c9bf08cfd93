package hal_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// order is shaped like the orders service's REST model: a resource with
// seven relations (one a list) and two lines with a link each.
type benchLine struct {
	ProductID string    `json:"product_id"`
	Name      string    `json:"product_name"`
	Quantity  int64     `json:"quantity"`
	Links     hal.Links `json:"_links"`
}

type benchOrder struct {
	ID     string      `json:"id"`
	Status string      `json:"status"`
	Lines  []benchLine `json:"lines"`
	Links  hal.Links   `json:"_links"`
}

func benchResource() benchOrder {
	api := hal.MustBase("http://127.0.0.1:8080")
	o := benchOrder{ID: "3f1c2a9e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", Status: "confirmed", Links: hal.Links{}}
	for _, p := range []string{"0b6f5f0e-aaaa-4b1b-9c1c-111111111111", "0b6f5f0e-bbbb-4b1b-9c1c-222222222222"} {
		l := benchLine{ProductID: p, Name: "Widget", Quantity: 1, Links: hal.Links{}}
		l.Links.Set("product", api.Href("catalog", "v1", "products", p))
		o.Lines = append(o.Lines, l)
		o.Links.Append("products", api.Href("catalog", "v1", "products", p))
	}
	o.Links.Set("self", api.Href("orders", "v1", "orders", o.ID))
	o.Links.Set("customer", api.Href("customers", "v1", "customers", "c-1"))
	o.Links.Set("reservation", api.Href("inventory", "v1", "reservations", o.ID))
	o.Links.Set("payment", api.Href("payments", "v1", "payments", "p-1"))
	o.Links.Set("shipment", api.Href("shipping", "v1", "shipments", "s-1"))
	o.Links.SetLink("search", hal.Link{Href: api.Href("orders", "v1", "orders") + "{?status,page,size}", Templated: true})
	return o
}

func BenchmarkWriteResource(b *testing.B) {
	o := benchResource()
	req := httptest.NewRequest("GET", "/v1/orders/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		hal.Write(httptest.NewRecorder(), req, 200, o)
	}
}

// Links and Rel render exactly as encoding/json renders the same links as
// plain values (map of Link or []Link), with and without HTML escaping, for
// strings full of characters that need escaping.
func TestLinksJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\b\f\n\r\t", "<a href='x'>&amp;</a>",
		"bad\xffutf8\xc3", "line\u2028sep\u2029", "ünïcödé 🚀", "http://x/o?page=2&size=20"}
	ls := hal.Links{}
	ref := map[string]any{}
	for i, s := range strs {
		l := hal.Link{Href: s, Templated: i%2 == 0, Title: strs[(i+1)%len(strs)], Name: strs[(i+2)%len(strs)], Type: strs[(i+3)%len(strs)]}
		rel := "rel-" + s
		if i%3 == 0 {
			ls[rel] = hal.Many(l, hal.Link{Href: s})
			ref[rel] = []hal.Link{l, {Href: s}}
		} else {
			ls.SetLink(rel, l)
			ref[rel] = l
		}
	}
	ls["empty"] = hal.Many()
	ref["empty"] = []hal.Link{}
	ls["zero"] = hal.Rel{}
	ref["zero"] = hal.Link{}
	for _, escape := range []bool{false, true} {
		encode := func(v any) string {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(escape)
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		if got, want := encode(ls), encode(ref); got != want {
			t.Errorf("escapeHTML=%v:\n got  %s\n want %s", escape, got, want)
		}
	}
	if b, _ := json.Marshal(hal.Links(nil)); string(b) != "null" {
		t.Errorf("nil Links = %s", b)
	}
}

// hal.Write keeps links readable: ?page=2&size=20, not \u0026.
func TestWriteDoesNotEscapeLinks(t *testing.T) {
	ls := hal.Links{}
	ls.Set("next", "http://x/o?page=2&size=20")
	rec := httptest.NewRecorder()
	hal.Write(rec, httptest.NewRequest("GET", "/", nil), 200, struct {
		Links hal.Links `json:"_links"`
	}{ls})
	if want := `{"_links":{"next":{"href":"http://x/o?page=2&size=20"}}}` + "\n"; rec.Body.String() != want {
		t.Errorf("body %s, want %s", rec.Body, want)
	}
}
