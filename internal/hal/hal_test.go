package hal_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func TestNewBase(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", true},
		{"https://api.example.com/shop/", "https://api.example.com/shop", true},
		{"127.0.0.1:8080", "", false},
		{"ftp://x", "", false},
		{"/relative", "", false},
		{"http://x/?q=1", "", false},
		{"http://u:p@x/", "", false},
		{"http://x/#f", "", false},
		{"::", "", false},
	}
	for _, tt := range tests {
		b, err := hal.NewBase(tt.raw)
		if (err == nil) != tt.ok || b.String() != tt.want {
			t.Errorf("NewBase(%q) = %q, %v; want %q ok=%v", tt.raw, b, err, tt.want, tt.ok)
		}
	}
}

func TestHref(t *testing.T) {
	api := hal.MustBase("http://127.0.0.1:8080/").Join("customers", "v1")
	if got := api.Href("customers", "a b/c"); got != "http://127.0.0.1:8080/customers/v1/customers/a%20b%2Fc" {
		t.Fatalf("Href = %q", got)
	}
	if got := api.Href(); got != "http://127.0.0.1:8080/customers/v1" {
		t.Fatalf("Href() = %q", got)
	}
	if got := api.HrefQuery(url.Values{"status": {"active"}}, "customers"); got != "http://127.0.0.1:8080/customers/v1/customers?status=active" {
		t.Fatalf("HrefQuery = %q", got)
	}
	if got := api.HrefQuery(nil, "customers"); got != "http://127.0.0.1:8080/customers/v1/customers" {
		t.Fatalf("HrefQuery(nil) = %q", got)
	}
}

func TestLinksJSON(t *testing.T) {
	ls := hal.Links{}
	ls.Set("self", "http://x/orders/1")
	ls.Append("products", "http://x/p/1")
	ls.SetLink("find", hal.Link{Href: "http://x/o{?status}", Templated: true})
	ls["empty-list"] = hal.Many()
	b, err := json.Marshal(ls)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"empty-list":[],"find":{"href":"http://x/o{?status}","templated":true},"products":[{"href":"http://x/p/1"}],"self":{"href":"http://x/orders/1"}}`
	if string(b) != want {
		t.Fatalf("marshal = %s\nwant      %s", b, want)
	}
	var back hal.Links
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back["products"].IsList() || back["self"].IsList() || back.Href("self") != "http://x/orders/1" || back.Href("nope") != "" {
		t.Fatalf("round trip = %+v", back)
	}
	b2, _ := json.Marshal(back)
	if string(b2) != want {
		t.Fatalf("round trip marshal = %s", b2)
	}
	if err := json.Unmarshal([]byte(`{"self":"not a link"}`), &back); err == nil {
		t.Fatal("accepted a string as a link")
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		query string
		want  hal.Page
		ok    bool
	}{
		{"", hal.Page{Number: 1, Size: hal.DefaultPageSize}, true},
		{"page=3&size=10", hal.Page{Number: 3, Size: 10}, true},
		{"size=100", hal.Page{Number: 1, Size: 100}, true},
		{"page=0", hal.Page{}, false},
		{"page=-1", hal.Page{}, false},
		{"page=abc", hal.Page{}, false},
		{"size=0", hal.Page{}, false},
		{"size=101", hal.Page{}, false},
		{"size=1&size=2", hal.Page{}, false},
		{"page=99999999999999999999", hal.Page{}, false},
		{"page=", hal.Page{}, false},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := hal.ParsePage(q)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePage(%q) = %+v, %v", tt.query, got, err)
		}
		if err != nil && err.Error()[:3] != "400" {
			t.Errorf("ParsePage(%q) error %v is not a 400 problem", tt.query, err)
		}
	}
}

func TestPageLinks(t *testing.T) {
	const href = "http://g/customers/v1/customers"
	at := func(n, size string, extra string) string {
		return href + "?" + extra + "page=" + n + "&size=" + size
	}
	tests := []struct {
		name    string
		page    hal.Page
		total   int
		filters url.Values
		want    map[string]string
	}{
		{"empty", hal.Page{1, 20}, 0, nil, map[string]string{
			"self": at("1", "20", ""), "first": at("1", "20", ""), "last": at("1", "20", "")}},
		{"first of three", hal.Page{1, 10}, 25, nil, map[string]string{
			"self": at("1", "10", ""), "first": at("1", "10", ""), "last": at("3", "10", ""), "next": at("2", "10", "")}},
		{"middle keeps filters", hal.Page{2, 10}, 30, url.Values{"status": {"active"}, "page": {"2"}}, map[string]string{
			"self": at("2", "10", ""), "first": at("1", "10", ""), "last": at("3", "10", ""),
			"prev": at("1", "10", ""), "next": at("3", "10", "")}},
		{"last", hal.Page{3, 10}, 30, nil, map[string]string{
			"self": at("3", "10", ""), "first": at("1", "10", ""), "last": at("3", "10", ""), "prev": at("2", "10", "")}},
		{"beyond last", hal.Page{9, 10}, 30, nil, map[string]string{
			"self": at("9", "10", ""), "first": at("1", "10", ""), "last": at("3", "10", ""), "prev": at("3", "10", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := hal.PageLinks(href, tt.filters, tt.page, tt.total)
			got := map[string]string{}
			for rel := range ls {
				got[rel] = ls.Href(rel)
			}
			if tt.filters.Get("status") != "" { // encoded keys are sorted: page, size, status
				for rel, h := range tt.want {
					tt.want[rel] = h + "&status=active"
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("links = %v\nwant    %v", got, tt.want)
			}
		})
	}
}

type item struct {
	ID    string    `json:"id"`
	Links hal.Links `json:"_links"`
}

func TestCollectionAndWrite(t *testing.T) {
	c := hal.NewCollection[item]("customers", "http://g/c", nil, nil, hal.Page{Number: 1, Size: 20}, 0)
	rec := httptest.NewRecorder()
	hal.Write(rec, httptest.NewRequest("GET", "/c", nil), http.StatusOK, c)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != hal.ContentType {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	emb := doc["_embedded"].(map[string]any)["customers"]
	if arr, ok := emb.([]any); !ok || len(arr) != 0 {
		t.Fatalf("_embedded.customers = %#v, want []", emb)
	}
	if doc["total"].(float64) != 0 || doc["page"].(float64) != 1 {
		t.Fatalf("doc = %v", doc)
	}

	rec = httptest.NewRecorder()
	hal.Write(rec, httptest.NewRequest("GET", "/c", nil), http.StatusOK, map[string]any{"bad": func() {}})
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unencodable value: status %d", rec.Code)
	}
}
