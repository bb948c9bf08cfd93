package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// raw sends one request exactly as given (body as bytes, headers as given)
// through the gateway and returns the answer.
func raw(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// testHostileInput sends, through the gateway, the hostile input an outside
// client sent to the platform: each is refused with the right status and a
// problem+json body, and nothing changes state.
func testHostileInput(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 500, 10)
	_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 1)), "")
	o = waitOrder(t, o, "confirmed with a shipment", func(o orderevents.Order) bool { return o.Status == orderevents.StatusConfirmed && o.ShipmentID != "" })
	json := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"duplicate keys never cancel an order", "PATCH", "/orders/v1/orders/" + o.ID, `{"status":"x","status":"cancelled"}`, json, 422},
		{"encoded slashes and dot segments in an id", "GET", "/customers/v1/customers/..%2F..%2Fcustomers%2Fv1", "", nil, 404},
		{"dot segments in a path", "GET", "/customers/v1/customers/../../catalog/v1/products", "", nil, 404},
		{"an order id in upper case", "GET", "/orders/v1/orders/" + strings.ToUpper(o.ID), "", nil, 404},
		{"a customer id in upper case", "GET", "/customers/v1/customers/" + strings.ToUpper(cu.ID), "", nil, 404},
		{"a product id in upper case", "GET", "/catalog/v1/products/" + strings.ToUpper(p.ID), "", nil, 404},
		{"NUL in a text field", "POST", "/customers/v1/customers", `{"email":"nul-` + randomID() + `@example.com","name":"a\u0000b"}`, json, 422},
		{"invalid UTF-8 in a text field", "POST", "/customers/v1/customers", "{\"email\":\"utf-" + randomID() + "@example.com\",\"name\":\"\xff\"}", json, 400},
		{"invalid UTF-8 in a query", "GET", "/orders/v1/orders?customer_id=%ff", "", nil, 400},
		{"an Accept the API cannot serve", "GET", "/orders/v1/orders/" + o.ID, "", map[string]string{"Accept": "text/html"}, 406},
		{"a body over the limit, chunked", "POST", "/customers/v1/customers", "", json, 413},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var r response
			if tt.want == 413 {
				r = chunkedOversize(t, c.Gateway+tt.path)
			} else {
				r = raw(t, tt.method, c.Gateway+tt.path, tt.body, tt.header)
			}
			if r.Status != tt.want || r.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("%s %s: %d %s, want %d problem+json: %s", tt.method, tt.path, r.Status, r.Header.Get("Content-Type"), tt.want, r.Body)
			}
		})
	}
	// OPTIONS is answered, not refused.
	if r := raw(t, "OPTIONS", c.Gateway+"/orders/v1/orders/"+o.ID, "", nil); r.Status != http.StatusNoContent || !strings.Contains(r.Header.Get("Allow"), "PATCH") {
		t.Errorf("OPTIONS: %d Allow %q", r.Status, r.Header.Get("Allow"))
	}
	// Nothing changed: the order is still confirmed, once.
	var again orderevents.Order
	get(t, o.Links.Href("self"), &again)
	if again.Status != orderevents.StatusConfirmed || again.Version != o.Version {
		t.Errorf("order changed by hostile input: %+v", again)
	}
}

// chunkedOversize POSTs a JSON body over the platform's 1 MiB limit without a
// Content-Length (chunked).
func chunkedOversize(t *testing.T, url string) response {
	t.Helper()
	body := io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("x", 2<<20)), strings.NewReader(`"}`))
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}
