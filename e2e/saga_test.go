package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// sagaTimeout bounds how long one step of the saga may take to show.
const sagaTimeout = 30 * time.Second

func randomID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestEndToEnd starts the platform once and drives every path of the saga
// through the gateway, in parallel, each with its own customer and products;
// then it crawls the API from the gateway root, and finally redelivers every
// event the run produced and checks that nothing changed.
func TestEndToEnd(t *testing.T) {
	c := startCluster(t)
	spy := startSpy(t, c)
	audit := startAudit(t, c)
	t.Run("the gateway root links every service", func(t *testing.T) { testRootLinksEveryService(t, c) })
	t.Run("saga", func(t *testing.T) {
		t.Run("confirmed, shipped, delivered", func(t *testing.T) { t.Parallel(); testDelivered(t, c) })
		t.Run("out of stock", func(t *testing.T) { t.Parallel(); testOutOfStock(t, c) })
		t.Run("payment declined", func(t *testing.T) { t.Parallel(); testPaymentDeclined(t, c) })
		t.Run("cancelled after payment", func(t *testing.T) { t.Parallel(); testCancelledAfterPayment(t, c) })
		t.Run("cancelled while pending", func(t *testing.T) { t.Parallel(); testCancelledWhilePending(t, c) })
		t.Run("scarce stock never oversold", func(t *testing.T) { t.Parallel(); testScarceStock(t, c) })
		t.Run("idempotent order placement", func(t *testing.T) { t.Parallel(); testIdempotencyKey(t, c) })
		t.Run("hostile input refused cleanly", func(t *testing.T) { t.Parallel(); testHostileInput(t, c) })
		t.Run("the edge: floods get 429 then recover, bounds", func(t *testing.T) { t.Parallel(); testEdge(t, c) })
		t.Run("identity and access", func(t *testing.T) { t.Parallel(); testAccess(t, c) })
		t.Run("the real key with wrong claims", func(t *testing.T) { t.Parallel(); testRealKeyWrongClaims(t, c) })
		t.Run("events name who acted", func(t *testing.T) { t.Parallel(); testActorOnEvents(t, c, spy) })
		t.Run("a second customer sees nothing of the first", func(t *testing.T) { t.Parallel(); testSecondCustomer(t, c) })
	})
	if t.Failed() {
		return
	}
	t.Run("every order's journeys settled, none stuck", func(t *testing.T) { testJourneys(t, c) })
	t.Run("every kind of resource reachable from the gateway root", func(t *testing.T) { testFollowLinks(t, c) })
	t.Run("every event delivered twice changes nothing twice", func(t *testing.T) { testRedelivery(t, c, spy) })
	t.Run("contracts and conformance", func(t *testing.T) { testConformance(t, c, audit) })
	t.Run("the operations console shows a journey stuck while payments is down", func(t *testing.T) { testConsole(t, c) })
}

// newCustomer registers a customer through the gateway.
func newCustomer(t *testing.T, c *Cluster) customerevents.Customer {
	t.Helper()
	var cu customerevents.Customer
	mustCall(t, http.StatusCreated, "POST", c.Gateway+"/customers/v1/customers",
		map[string]any{"email": "e2e-" + randomID() + "@example.com", "name": "E2E Shopper"}, nil).decode(t, &cu)
	return cu
}

// newProduct adds a product to the catalog and, when stock > 0, replenishes
// its stock once inventory has learned about it.
func newProduct(t *testing.T, c *Cluster, price, stock int64) productevents.Product {
	t.Helper()
	var p productevents.Product
	mustCall(t, http.StatusCreated, "POST", c.Gateway+"/catalog/v1/products", map[string]any{
		"sku": "E2E-" + strings.ToUpper(randomID()), "name": "E2E widget", "description": "made by the end-to-end tests",
		"price": map[string]any{"amount": price, "currency": "EUR"},
	}, nil).decode(t, &p)
	if stock > 0 {
		url := c.Gateway + "/inventory/v1/stock-items/" + p.ID + "/replenishments"
		eventually(t, sagaTimeout, "inventory to accept a replenishment of "+p.ID, func() (bool, string) {
			r := call(t, "POST", url, map[string]any{"quantity": stock}, nil)
			return r.Status == http.StatusCreated, fmt.Sprintf("%d %s", r.Status, r.Body)
		})
	}
	return p
}

// orderBody is a POST /v1/orders body paying with a payment method of the
// customer with token (registered with payments once per customer and token).
func orderBody(customerID, token string, lines ...any) map[string]any {
	return map[string]any{
		"customer_id":       customerID,
		"lines":             lines,
		"payment_method_id": paymentMethod(customerID, token),
		"shipping_address": map[string]any{
			"name": "E2E Shopper", "line1": "1 Test Street", "postal_code": "10115", "city": "Berlin", "country": "DE",
		},
	}
}

var (
	methodsMu  sync.Mutex
	methods    = map[[2]string]string{} // customer, token -> payment method id
	gatewayURL string                   // of the running cluster (startCluster)
)

// paymentMethod registers, as staff, a payment method of customerID with
// token and returns its id; "" when that fails (the order is then refused
// with 422, naming payment_method_id).
func paymentMethod(customerID, token string) string {
	methodsMu.Lock()
	defer methodsMu.Unlock()
	if id, ok := methods[[2]string{customerID, token}]; ok {
		return id
	}
	b, _ := json.Marshal(map[string]string{"token": token, "customer_id": customerID})
	req, _ := http.NewRequest("POST", gatewayURL+"/payments/v1/payment-methods", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var m struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&m) != nil {
		return ""
	}
	methods[[2]string{customerID, token}] = m.ID
	return m.ID
}

func line(productID string, quantity int) map[string]any {
	return map[string]any{"product_id": productID, "quantity": quantity}
}

// tryPlace POSTs an order, retrying while the orders service has not yet
// heard of the customer or a product (its read models follow events). It
// returns the 201 answer, or an error; safe to call from any goroutine.
func tryPlace(gateway string, body map[string]any, key string) (response, orderevents.Order, error) {
	payload, _ := json.Marshal(body)
	deadline := time.Now().Add(sagaTimeout)
	for {
		req, _ := http.NewRequest("POST", gateway+"/orders/v1/orders", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return response{}, orderevents.Order{}, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return response{}, orderevents.Order{}, err
		}
		r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
		if r.Status == http.StatusCreated {
			var o orderevents.Order
			err := json.Unmarshal(r.Body, &o)
			return r, o, err
		}
		var p problem.Problem
		_ = json.Unmarshal(r.Body, &p)
		unknown := r.Status == http.StatusUnprocessableEntity && len(p.Errors) > 0
		for _, f := range p.Errors {
			unknown = unknown && (f.Message == "unknown customer" || f.Message == "unknown product")
		}
		if !unknown || time.Now().After(deadline) {
			return r, orderevents.Order{}, fmt.Errorf("POST /orders/v1/orders: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// place is tryPlace that fails the test on error.
func place(t *testing.T, c *Cluster, body map[string]any, key string) (response, orderevents.Order) {
	t.Helper()
	r, o, err := tryPlace(c.Gateway, body, key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("Location") != o.Links.Href("self") || !strings.HasPrefix(o.Links.Href("self"), c.Gateway+"/orders/v1/orders/") {
		t.Errorf("Location %q, self %q", r.Header.Get("Location"), o.Links.Href("self"))
	}
	return r, o
}

// waitOrder polls an order until cond holds.
func waitOrder(t *testing.T, o orderevents.Order, what string, cond func(orderevents.Order) bool) orderevents.Order {
	t.Helper()
	var cur orderevents.Order
	eventually(t, sagaTimeout, "order "+o.ID+" "+what, func() (bool, string) {
		cur = orderevents.Order{}
		get(t, o.Links.Href("self"), &cur)
		return cond(cur), fmt.Sprintf("status %s reason %q payment %q shipment %q", cur.Status, cur.CancellationReason, cur.PaymentID, cur.ShipmentID)
	})
	return cur
}

// stockOf returns the stock level of a product.
func stockOf(t *testing.T, c *Cluster, productID string) stockevents.Stock {
	t.Helper()
	var s stockevents.Stock
	get(t, c.Gateway+"/inventory/v1/stock-items/"+productID, &s)
	return s
}

// waitStock polls the stock of a product until it shows available and reserved.
func waitStock(t *testing.T, c *Cluster, productID string, available, reserved int64) {
	t.Helper()
	eventually(t, sagaTimeout, fmt.Sprintf("stock of %s at %d available, %d reserved", productID, available, reserved), func() (bool, string) {
		s := stockOf(t, c, productID)
		return s.Available == available && s.Reserved == reserved, fmt.Sprintf("%d available, %d reserved", s.Available, s.Reserved)
	})
}

func reservationOf(t *testing.T, o orderevents.Order) stockevents.Reservation {
	t.Helper()
	var r stockevents.Reservation
	get(t, o.Links.Href("reservation"), &r)
	return r
}

func paymentOf(t *testing.T, o orderevents.Order) paymentevents.Payment {
	t.Helper()
	if o.Links.Href("payment") == "" {
		t.Fatalf("order %s has no payment link: %s", o.ID, o.Status)
	}
	var p paymentevents.Payment
	get(t, o.Links.Href("payment"), &p)
	return p
}

// shipmentOf returns the order's shipment and its ETag.
func shipmentOf(t *testing.T, o orderevents.Order) (shipmentevents.Shipment, string) {
	t.Helper()
	if o.Links.Href("shipment") == "" {
		t.Fatalf("order %s has no shipment link: %s", o.ID, o.Status)
	}
	var s shipmentevents.Shipment
	r := get(t, o.Links.Href("shipment"), &s)
	return s, r.Header.Get("ETag")
}

// paymentsOf lists the payments of an order through the payments API.
func paymentsOf(t *testing.T, c *Cluster, orderID string) []paymentevents.Payment {
	t.Helper()
	var col hal.Collection[paymentevents.Payment]
	get(t, c.Gateway+"/payments/v1/payments?order_id="+orderID, &col)
	return col.Embedded["payments"]
}

// setShipmentStatus moves a shipment through the shipping API (PATCH with If-Match).
func setShipmentStatus(t *testing.T, o orderevents.Order, status string) {
	t.Helper()
	_, etag := shipmentOf(t, o)
	mustCall(t, http.StatusOK, "PATCH", o.Links.Href("shipment"), map[string]any{"status": status}, map[string]string{"If-Match": etag})
}

// waitNotifications waits until the customer's notifications (its
// notifications link, through the gateway) about order o are exactly one of
// each kind, every one sent to the customer's address; and checks that the
// mail server received exactly one message per notification of the customer
// (all of whose orders are given in want, order id -> kinds).
func waitNotifications(t *testing.T, c *Cluster, cu customerevents.Customer, want map[string][]string) {
	t.Helper()
	href := cu.Links.Href("notifications")
	if href == "" {
		t.Fatalf("customer %s has no notifications link", cu.ID)
	}
	total := 0
	for _, kinds := range want {
		total += len(kinds)
	}
	eventually(t, sagaTimeout, "the notifications of customer "+cu.ID, func() (bool, string) {
		var page struct {
			Total    int                                          `json:"total"`
			Embedded map[string][]notificationevents.Notification `json:"_embedded"`
		}
		get(t, href+"&size=100", &page)
		got := map[string]int{}
		sent := 0
		for _, n := range page.Embedded["notifications"] {
			got[n.OrderID+"/"+n.Kind]++
			if n.Status == notificationevents.StatusSent && n.Recipient == cu.Email && n.CustomerID == cu.ID {
				sent++
			}
		}
		for order, kinds := range want {
			for _, k := range kinds {
				if got[order+"/"+k] > 1 {
					t.Fatalf("%d notifications %s for order %s, want one", got[order+"/"+k], k, order)
				}
			}
		}
		return page.Total == total && sent == total, fmt.Sprintf("%d notifications (%d sent), want %d sent: %v", page.Total, sent, total, got)
	})
	msgs := 0
	for _, m := range c.SMTP.Messages() {
		if len(m.To) == 1 && m.To[0] == cu.Email {
			msgs++
		}
	}
	if msgs != total {
		t.Errorf("the mail server received %d messages for %s, want %d (one per notification)", msgs, cu.Email, total)
	}
}

func testDelivered(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 1250, 10)
	_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 3)), "")
	if o.Status != orderevents.StatusPending || o.Total.Amount != 3750 || o.Total.Currency != "EUR" || o.Version != 1 {
		t.Fatalf("placed order %+v", o)
	}
	o = waitOrder(t, o, "confirmed with a shipment", func(o orderevents.Order) bool {
		return o.Status == orderevents.StatusConfirmed && o.ShipmentID != ""
	})
	pay := paymentOf(t, o)
	if pay.Status != paymentevents.StatusCaptured || pay.OrderID != o.ID || pay.Amount.Amount != 3750 {
		t.Errorf("payment %+v", pay)
	}
	waitStock(t, c, p.ID, 7, 3)
	if r := reservationOf(t, o); r.Status != stockevents.ReservationHeld {
		t.Errorf("reservation %+v", r)
	}
	if s, _ := shipmentOf(t, o); s.Status != shipmentevents.StatusScheduled || s.OrderID != o.ID || s.Address.City != "Berlin" {
		t.Errorf("shipment %+v", s)
	}
	// The order's links reach the other services.
	var cust customerevents.Customer
	get(t, o.Links.Href("customer"), &cust)
	var prod productevents.Product
	get(t, o.Lines[0].Links.Href("product"), &prod)
	if cust.ID != cu.ID || prod.ID != p.ID {
		t.Errorf("linked customer %s, product %s", cust.ID, prod.ID)
	}

	setShipmentStatus(t, o, shipmentevents.StatusDispatched)
	o = waitOrder(t, o, "shipped", func(o orderevents.Order) bool { return o.Status == orderevents.StatusShipped })
	setShipmentStatus(t, o, shipmentevents.StatusDelivered)
	o = waitOrder(t, o, "delivered", func(o orderevents.Order) bool { return o.Status == orderevents.StatusDelivered })

	// Final state of every service.
	if s, _ := shipmentOf(t, o); s.Status != shipmentevents.StatusDelivered {
		t.Errorf("shipment %+v", s)
	}
	if pay := paymentOf(t, o); pay.Status != paymentevents.StatusCaptured {
		t.Errorf("payment %+v", pay)
	}
	// The goods left with the shipment: inventory counted the held stock down.
	waitStock(t, c, p.ID, 7, 0)
	if s := stockOf(t, c, p.ID); s.Shipped != 3 || s.Replenished != 10 || s.Available+s.Reserved+s.Shipped != s.Replenished {
		t.Errorf("stock %+v, want 3 shipped of 10 replenished", s)
	}
	if r := reservationOf(t, o); r.Status != stockevents.ReservationShipped || r.ShippedAt == nil {
		t.Errorf("reservation %+v, want shipped", r)
	}
	// A delivered order can no longer be cancelled.
	mustCall(t, http.StatusConflict, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, nil)
	waitNotifications(t, c, cu, map[string][]string{o.ID: {"order_confirmed", "order_shipped", "order_delivered"}})
}

func testOutOfStock(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 999, 2)
	_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 3)), "")
	o = waitOrder(t, o, "cancelled", func(o orderevents.Order) bool { return o.Status == orderevents.StatusCancelled })
	if o.CancellationReason != orderevents.ReasonOutOfStock {
		t.Errorf("reason %q", o.CancellationReason)
	}
	if r := reservationOf(t, o); r.Status != stockevents.ReservationRejected || r.Reason != stockevents.ReasonOutOfStock {
		t.Errorf("reservation %+v", r)
	}
	if s := stockOf(t, c, p.ID); s.Available != 2 || s.Reserved != 0 {
		t.Errorf("stock %+v", s)
	}
	if ps := paymentsOf(t, c, o.ID); len(ps) != 0 {
		t.Errorf("payments %+v for an order without stock", ps)
	}
	if o.PaymentID != "" || o.ShipmentID != "" {
		t.Errorf("order %+v has a payment or a shipment", o)
	}
	waitNotifications(t, c, cu, map[string][]string{o.ID: {"order_cancelled"}})
}

func testPaymentDeclined(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 500, 10)
	_, o := place(t, c, orderBody(cu.ID, "tok_decline", line(p.ID, 2)), "")
	o = waitOrder(t, o, "cancelled", func(o orderevents.Order) bool { return o.Status == orderevents.StatusCancelled })
	if o.CancellationReason != orderevents.ReasonPaymentDeclined {
		t.Errorf("reason %q", o.CancellationReason)
	}
	if pay := paymentOf(t, o); pay.Status != paymentevents.StatusDeclined || pay.Reason != paymentevents.ReasonCardDeclined {
		t.Errorf("payment %+v", pay)
	}
	waitStock(t, c, p.ID, 10, 0) // the reservation was released
	if r := reservationOf(t, o); r.Status != stockevents.ReservationReleased {
		t.Errorf("reservation %+v", r)
	}
	if o.ShipmentID != "" {
		t.Errorf("declined order has shipment %s", o.ShipmentID)
	}
	waitNotifications(t, c, cu, map[string][]string{o.ID: {"order_cancelled"}})
}

func testCancelledAfterPayment(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 2000, 10)
	_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 4)), "")
	o = waitOrder(t, o, "confirmed with a shipment", func(o orderevents.Order) bool {
		return o.Status == orderevents.StatusConfirmed && o.ShipmentID != ""
	})
	waitStock(t, c, p.ID, 6, 4)
	r := call(t, "GET", o.Links.Href("self"), nil, nil)
	etag := r.Header.Get("ETag")
	if etag != fmt.Sprintf(`"%d"`, o.Version) {
		t.Errorf("ETag %q for version %d", etag, o.Version)
	}
	mustCall(t, http.StatusPreconditionFailed, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, map[string]string{"If-Match": `"999"`})
	mustCall(t, http.StatusUnprocessableEntity, "PATCH", o.Links.Href("self"), map[string]any{"status": "shipped"}, nil)
	var cancelled orderevents.Order
	mustCall(t, http.StatusOK, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, map[string]string{"If-Match": etag}).decode(t, &cancelled)
	if cancelled.Status != orderevents.StatusCancelled || cancelled.CancellationReason != orderevents.ReasonCustomerRequested {
		t.Errorf("cancelled order %+v", cancelled)
	}
	mustCall(t, http.StatusConflict, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, nil)

	// Compensation: refund, stock released, shipment cancelled.
	eventually(t, sagaTimeout, "the payment refunded", func() (bool, string) {
		pay := paymentOf(t, o)
		return pay.Status == paymentevents.StatusRefunded, pay.Status
	})
	waitStock(t, c, p.ID, 10, 0)
	if r := reservationOf(t, o); r.Status != stockevents.ReservationReleased {
		t.Errorf("reservation %+v", r)
	}
	eventually(t, sagaTimeout, "the shipment cancelled", func() (bool, string) {
		s, _ := shipmentOf(t, o)
		return s.Status == shipmentevents.StatusCancelled, s.Status
	})
	if ps := paymentsOf(t, c, o.ID); len(ps) != 1 {
		t.Errorf("%d payments for one order", len(ps))
	}
	final := waitOrder(t, o, "still cancelled", func(o orderevents.Order) bool { return o.Status == orderevents.StatusCancelled })
	if final.CancellationReason != orderevents.ReasonCustomerRequested {
		t.Errorf("final order %+v", final)
	}
	waitNotifications(t, c, cu, map[string][]string{o.ID: {"order_confirmed", "order_cancelled", "payment_refunded"}})
}

// testCancelledWhilePending cancels orders the moment they are placed, racing
// the reservation and the payment: whatever order the events arrive in, the
// orders stay cancelled, the stock comes back whole, no payment stays
// captured and nothing is shipped.
func testCancelledWhilePending(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 700, 10)
	var orders []orderevents.Order
	for range 3 {
		_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 2)), "")
		r := call(t, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, map[string]string{"If-Match": `"1"`})
		switch r.Status {
		case http.StatusOK:
			orders = append(orders, o)
		case http.StatusPreconditionFailed: // the saga moved it first; cancel what it is now
			var cur orderevents.Order
			get(t, o.Links.Href("self"), &cur)
			mustCall(t, http.StatusOK, "PATCH", o.Links.Href("self"), map[string]any{"status": "cancelled"}, nil)
			orders = append(orders, cur)
		default:
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
	}
	waitStock(t, c, p.ID, 10, 0)
	for _, o := range orders {
		eventually(t, sagaTimeout, "no captured payment for cancelled order "+o.ID, func() (bool, string) {
			ps := paymentsOf(t, c, o.ID)
			for _, pay := range ps {
				if pay.Status == paymentevents.StatusCaptured {
					return false, "captured"
				}
			}
			return len(ps) <= 1, fmt.Sprintf("%d payments", len(ps))
		})
		final := waitOrder(t, o, "cancelled", func(o orderevents.Order) bool { return o.Status == orderevents.StatusCancelled })
		if final.CancellationReason != orderevents.ReasonCustomerRequested {
			t.Errorf("order %+v", final)
		}
		// An order the saga confirmed just before the cancel (the 412
		// branch) may have had a shipment scheduled: nothing is shipped, the
		// shipment is cancelled. The order keeps its link to it.
		if final.ShipmentID != "" {
			eventually(t, sagaTimeout, "the shipment of cancelled order "+o.ID+" cancelled", func() (bool, string) {
				s, _ := shipmentOf(t, final)
				return s.Status == shipmentevents.StatusCancelled, s.Status
			})
		}
	}
}

// testScarceStock places 20 orders at once for a product with 5 units:
// exactly 5 are confirmed, 15 cancelled out of stock, and stock never goes
// below zero.
func testScarceStock(t *testing.T, c *Cluster) {
	const units, buyers = 5, 20
	cu := newCustomer(t, c)
	p := newProduct(t, c, 100, units)
	orders := make([]orderevents.Order, buyers)
	errs := make([]error, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			_, orders[i], errs[i] = tryPlace(c.Gateway, orderBody(cu.ID, "tok_visa", line(p.ID, 1)), "")
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var confirmed, cancelled []orderevents.Order
	eventually(t, sagaTimeout, "every order confirmed or cancelled", func() (bool, string) {
		confirmed, cancelled = nil, nil
		for _, o := range orders {
			var cur orderevents.Order
			get(t, o.Links.Href("self"), &cur)
			switch cur.Status {
			case orderevents.StatusConfirmed:
				confirmed = append(confirmed, cur)
			case orderevents.StatusCancelled:
				cancelled = append(cancelled, cur)
			}
		}
		return len(confirmed)+len(cancelled) == buyers, fmt.Sprintf("%d confirmed, %d cancelled", len(confirmed), len(cancelled))
	})
	if len(confirmed) != units {
		t.Errorf("%d orders confirmed for %d units", len(confirmed), units)
	}
	for _, o := range cancelled {
		if o.CancellationReason != orderevents.ReasonOutOfStock {
			t.Errorf("order %s cancelled for %s", o.ID, o.CancellationReason)
		}
	}
	for _, o := range confirmed {
		if pay := paymentOf(t, o); pay.Status != paymentevents.StatusCaptured {
			t.Errorf("payment of confirmed order %s: %+v", o.ID, pay)
		}
	}
	if s := stockOf(t, c, p.ID); s.Available != 0 || s.Reserved != units {
		t.Errorf("stock %+v, want 0 available and %d reserved", s, units)
	}
	// The orders collection, filtered by customer and status, agrees.
	var col hal.Collection[orderevents.Order]
	get(t, c.Gateway+"/orders/v1/orders?customer_id="+cu.ID+"&status=confirmed&size=2", &col)
	if col.Total != units || len(col.Embedded["orders"]) != 2 || col.Links.Href("next") == "" {
		t.Errorf("collection: total %d, %d embedded, links %v", col.Total, len(col.Embedded["orders"]), col.Links)
	}
}

// testIdempotencyKey retries a POST with the same Idempotency-Key through
// the gateway: the first answer comes back and one order exists.
func testIdempotencyKey(t *testing.T, c *Cluster) {
	cu := newCustomer(t, c)
	p := newProduct(t, c, 300, 10)
	key := "e2e-" + randomID()
	body := orderBody(cu.ID, "tok_visa", line(p.ID, 1))
	first, o := place(t, c, body, key)
	again, o2 := place(t, c, body, key)
	if o2.ID != o.ID || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %s\nfirst: %s", again.Body, first.Body)
	}
	body["lines"] = []any{line(p.ID, 2)}
	b, _ := json.Marshal(body)
	r := call(t, "POST", c.Gateway+"/orders/v1/orders", json.RawMessage(b), map[string]string{"Idempotency-Key": key})
	if r.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: %d %s", r.Status, r.Body)
	}
	var col hal.Collection[orderevents.Order]
	get(t, c.Gateway+"/orders/v1/orders?customer_id="+cu.ID, &col)
	if col.Total != 1 {
		t.Errorf("%d orders for one idempotent placement", col.Total)
	}
	waitOrder(t, o, "confirmed", func(o orderevents.Order) bool { return o.Status == orderevents.StatusConfirmed })
	waitStock(t, c, p.ID, 9, 1)
}
