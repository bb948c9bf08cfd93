package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/services/gateway/access"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// secondCustomerCase is what the second-customer test does with one
// operation that customers may call: the value of each path parameter (a
// resource of the first customer) and the body to send.
type secondCustomerCase struct {
	params map[string]string // {name} -> value
	body   any
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// testSecondCustomer tries every operation of every service, as read from
// the committed OpenAPI manifests (the route tables), as a second customer
// (Bob) against the resources of a first one (Ann): an operation customers
// may not call answers 403; an item of Ann's answers 404 to Bob, exactly as
// a missing one, and is unchanged afterwards; a collection shows Bob none of
// Ann's resources; placing an order for Ann places it for Bob. An operation
// customers may call that this test has no case for fails the test: a new
// route cannot skip it.
func testSecondCustomer(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ann, err := c.p.SignUpCustomer(ctx, "ann-"+randomID()+"@example.com", "Ann", "ann's long password")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := c.p.SignUpCustomer(ctx, "bob-"+randomID()+"@example.com", "Bob", "bob's long password")
	if err != nil {
		t.Fatal(err)
	}
	asAnn := map[string]string{"Authorization": "Bearer " + ann.Token}
	asBob := map[string]string{"Authorization": "Bearer " + bob.Token}

	// Ann's order, confirmed, with its payment and shipment.
	p := newProduct(t, c, 1500, 10)
	var o orderevents.Order
	eventually(t, sagaTimeout, "Ann's order to be placed", func() (bool, string) {
		r := call(t, "POST", c.Gateway+"/orders/v1/orders", orderBody(ann.CustomerID, "tok_visa", line(p.ID, 1)), asAnn)
		if r.Status == http.StatusCreated {
			r.decode(t, &o)
		}
		return r.Status == http.StatusCreated, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
	o = waitOrder(t, o, "confirmed with a shipment", func(o orderevents.Order) bool { return o.Status == "confirmed" && o.ShipmentID != "" })
	// The raw payment token stays in payments: no read shows it.
	for _, u := range []string{o.Links.Href("self"), c.Gateway + "/payments/v1/payment-methods/" + paymentMethod(ann.CustomerID, "tok_visa"),
		c.Gateway + "/payments/v1/payments/" + o.PaymentID} {
		if r := mustCall(t, http.StatusOK, "GET", u, nil, asAnn); strings.Contains(string(r.Body), "tok_visa") {
			t.Errorf("GET %s shows the payment token: %s", u, r.Body)
		}
	}
	if o.CustomerID != ann.CustomerID {
		t.Fatalf("Ann's order is for %q", o.CustomerID)
	}

	// One of Ann's notifications (her order's confirmation).
	var annNote string
	eventually(t, sagaTimeout, "a notification for Ann", func() (bool, string) {
		var page struct {
			Embedded struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"notifications"`
			} `json:"_embedded"`
		}
		r := call(t, "GET", c.Gateway+"/notifications/v1/notifications?customer_id="+ann.CustomerID, nil, nil)
		if r.Status == http.StatusOK && json.Unmarshal(r.Body, &page) == nil && len(page.Embedded.Items) > 0 {
			annNote = page.Embedded.Items[0].ID
		}
		return annNote != "", fmt.Sprintf("%d %s", r.Status, r.Body)
	})

	// Bob places an order naming Ann as the customer (with his own payment
	// method: a method of Ann's would put her method's id into his order).
	bobForAnn := orderBody(ann.CustomerID, "tok_visa", line(p.ID, 1))
	bobForAnn["payment_method_id"] = paymentMethod(bob.CustomerID, "tok_visa")
	cases := map[string]secondCustomerCase{
		"GET /orders/v1/orders":                    {},
		"POST /orders/v1/orders":                   {body: bobForAnn},
		"GET /orders/v1/orders/{id}":               {params: map[string]string{"id": o.ID}},
		"PATCH /orders/v1/orders/{id}":             {params: map[string]string{"id": o.ID}, body: map[string]any{"status": "cancelled"}},
		"GET /payments/v1/payments":                {},
		"GET /payments/v1/payments/{id}":           {params: map[string]string{"id": o.PaymentID}},
		"GET /shipping/v1/shipments":               {},
		"GET /shipping/v1/shipments/{id}":          {params: map[string]string{"id": o.ShipmentID}},
		"GET /customers/v1/customers/{id}":         {params: map[string]string{"id": ann.CustomerID}},
		"PATCH /customers/v1/customers/{id}":       {params: map[string]string{"id": ann.CustomerID}, body: map[string]any{"name": "Mallory"}},
		"GET /identity/v1/accounts/{id}":           {params: map[string]string{"id": ann.AccountID}},
		"GET /payments/v1/payment-methods":         {},
		"POST /payments/v1/payment-methods":        {body: map[string]any{"token": "tok_bob", "customer_id": ann.CustomerID}},
		"GET /payments/v1/payment-methods/{id}":    {params: map[string]string{"id": paymentMethod(ann.CustomerID, "tok_visa")}},
		"GET /notifications/v1/notifications":      {},
		"GET /notifications/v1/notifications/{id}": {params: map[string]string{"id": annNote}},
	}
	// Values for the path parameters of operations customers may not call.
	staffParams := map[string]string{"id": o.ID, "product_id": p.ID, "order_id": o.ID, "fingerprint": "0123456789abcdef"}

	rules, err := access.Rules(manifests.FS)
	if err != nil {
		t.Fatal(err)
	}
	annIDs := []string{o.ID, o.PaymentID, o.ShipmentID, ann.CustomerID, ann.AccountID, paymentMethod(ann.CustomerID, "tok_visa"), annNote}
	tried := 0
	for _, rule := range rules {
		if rule.Req.Anonymous {
			continue // open to anyone: browsing, roots, sign-up, the contracts
		}
		method, path, _ := strings.Cut(rule.Pattern, " ")
		customers := len(rule.Req.Roles) == 0
		for _, r := range rule.Req.Roles {
			customers = customers || r == auth.RoleCustomer
		}
		tc, known := cases[rule.Pattern]
		if customers && !known {
			t.Errorf("%s is open to customers but the second-customer test has no case for it: add one to testSecondCustomer", rule.Pattern)
			continue
		}
		params := tc.params
		if !customers {
			params = staffParams
		}
		url := c.Gateway + pathParam.ReplaceAllStringFunc(path, func(m string) string {
			v, ok := params[m[1:len(m)-1]]
			if !ok {
				t.Errorf("%s: no value for %s", rule.Pattern, m)
			}
			return v
		})
		tried++
		body := tc.body
		if method == "POST" || method == "PATCH" || method == "PUT" {
			if body == nil {
				body = map[string]any{}
			}
		}
		got := call(t, method, url, body, asBob)
		switch {
		case !customers:
			if got.Status != http.StatusForbidden || got.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s as a customer: %d %s, want 403 problem+json", rule.Pattern, got.Status, got.Body)
			}
		case !strings.Contains(path, "{"): // a collection
			if method == "POST" {
				var placed orderevents.Order
				if got.Status == http.StatusCreated {
					got.decode(t, &placed)
				}
				if got.Status != http.StatusCreated || placed.CustomerID != bob.CustomerID {
					t.Errorf("%s for Ann as Bob: %d %s, want a resource of Bob's", rule.Pattern, got.Status, got.Body)
				}
				continue
			}
			for _, id := range annIDs {
				if got.Status != http.StatusOK || strings.Contains(string(got.Body), id) {
					t.Errorf("%s as Bob: %d, shows Ann's %s: %s", rule.Pattern, got.Status, id, got.Body)
				}
			}
		default: // an item of Ann's
			missingURL := c.Gateway + pathParam.ReplaceAllString(path, "00000000-0000-4000-8000-000000000000")
			missing := call(t, method, missingURL, body, asBob)
			if got.Status != http.StatusNotFound || missing.Status != http.StatusNotFound ||
				got.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s on Ann's resource as Bob: %d %s (a missing one: %d), want 404", rule.Pattern, got.Status, got.Body, missing.Status)
			}
		}
	}
	if tried < len(cases) {
		t.Errorf("tried %d operations, fewer than the %d cases: the manifests were not read", tried, len(cases))
	}
	// Nothing of Ann's changed.
	if cur := waitOrder(t, o, "still confirmed", func(x orderevents.Order) bool { return true }); cur.Status != "confirmed" || cur.Version != o.Version {
		t.Errorf("Ann's order changed: %s version %d (was %d)", cur.Status, cur.Version, o.Version)
	}
	r := mustCall(t, http.StatusOK, "GET", c.Gateway+"/customers/v1/customers/"+ann.CustomerID, nil, asAnn)
	if strings.Contains(string(r.Body), "Mallory") {
		t.Errorf("Ann's record was changed by Bob: %s", r.Body)
	}
}

// testActorOnEvents: the events an order of a signed-up customer causes, in
// every service, name her (actor_subject: her account, actor_role:
// customer): order_placed, which her request caused, and the stock,
// payment and order events its handling caused down the flow.
func testActorOnEvents(t *testing.T, c *Cluster, s *spy) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	carol, err := c.p.SignUpCustomer(ctx, "carol-"+randomID()+"@example.com", "Carol", "carol's long password")
	if err != nil {
		t.Fatal(err)
	}
	p := newProduct(t, c, 900, 5)
	var o orderevents.Order
	eventually(t, sagaTimeout, "Carol's order to be placed", func() (bool, string) {
		r := call(t, "POST", c.Gateway+"/orders/v1/orders", orderBody(carol.CustomerID, "tok_visa", line(p.ID, 1)),
			map[string]string{"Authorization": "Bearer " + carol.Token})
		if r.Status == http.StatusCreated {
			r.decode(t, &o)
		}
		return r.Status == http.StatusCreated, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
	want := []string{"sales.orders.order_placed", "logistics.inventory.stock_reserved", "finance.payments.payment_captured", "sales.orders.order_confirmed"}
	eventually(t, sagaTimeout, "the events of Carol's order, naming her", func() (bool, string) {
		seen := map[string]string{}
		for _, d := range s.snapshot() {
			if !strings.Contains(string(d.Body), o.ID) {
				continue
			}
			sub, _ := d.Headers["actor_subject"].(string)
			role, _ := d.Headers["actor_role"].(string)
			seen[d.Type] = sub + "/" + role
		}
		for _, typ := range want {
			if seen[typ] != carol.AccountID+"/customer" {
				return false, fmt.Sprintf("want %s/customer on %v, seen %v", carol.AccountID, want, seen)
			}
		}
		return true, ""
	})
}
