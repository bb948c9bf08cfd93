package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// plan is what the shopper means to do with an order, and so which final
// state it expects.
type plan string

const (
	planConfirm     plan = "confirm"      // ample stock, good card: confirmed
	planShip        plan = "ship"         // confirmed, then its shipment dispatched: shipped
	planDeliver     plan = "deliver"      // dispatched, then delivered: delivered
	planScarce      plan = "scarce"       // a line of the scarce product: confirmed or out_of_stock
	planSoldOut     plan = "sold-out"     // a line of a product without stock: out_of_stock
	planDecline     plan = "decline"      // a payment method with token tok_decline: payment_declined
	planCancelEarly plan = "cancel-early" // cancelled right after placing, racing the saga
	planCancelLate  plan = "cancel-late"  // cancelled once confirmed: refunded
	planFault       plan = "fault"        // payments fails permanently for its token: dead-lettered, replayed
	planFlaky       plan = "flaky"        // payments fails twice for its token, then succeeds: retried
)

// mix is the cycle of plans the steady stream goes through.
var mix = []plan{
	planConfirm, planShip, planDecline, planScarce, planCancelEarly, planConfirm, planDeliver, planSoldOut,
	planCancelLate, planConfirm, planDecline, planShip, planScarce, planConfirm, planCancelEarly, planDeliver,
	planConfirm, planDecline, planCancelLate, planSoldOut,
}

// Tokens of the payment simulator and of the payments fault injection
// (services/payments/faults.go).
const (
	tokenOK      = "tok_visa"
	tokenDecline = "tok_decline"
	tokenFault   = "tok_chaos_fail"
	tokenFlaky   = "tok_chaos_flaky"
)

type lineReq struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// outcome of a request the shopper made after placing an order.
type outcome string

const (
	notTried outcome = ""
	accepted outcome = "accepted"
	refused  outcome = "conflict" // 409: the order or shipment had moved on
)

// orderRecord is what the shopper did with one order and what it was told.
type orderRecord struct {
	N        int
	Scenario string
	Plan     plan
	Key      string // Idempotency-Key of the POST
	Token    string
	Lines    []lineReq

	mu         sync.Mutex
	ID         string  // from the 201; empty if never acknowledged
	PlaceErr   string  // why it was never acknowledged
	Cancel     outcome // PATCH {"status":"cancelled"}
	Dispatch   outcome // PATCH shipment dispatched
	Deliver    outcome // PATCH shipment delivered
	JourneyErr string  // a step that could not be completed
	Placed     time.Time
	Settled    time.Duration // from 201 to the first non-pending status seen (0: not watched)
}

func (r *orderRecord) set(f func(r *orderRecord)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// catalog is what the shopper set up before the first order.
type catalog struct {
	customers []string
	// methods are each customer's payment methods, by token: orders name a
	// method registered with payments (payment_method_id), never a token.
	methods map[string]map[string]string
	plenty  []string // products with ample stock
	scarce  string   // a product with little stock, replenished now and then
	soldOut string   // a product that never has stock
}

// shopper places orders through the gateway and follows them.
type shopper struct {
	gw     string
	c      *client
	cat    catalog
	rng    *rand.Rand
	rngMu  sync.Mutex
	logf   func(format string, args ...any)
	follow time.Duration // how long a journey may wait for the saga

	mu          sync.Mutex
	orders      []*orderRecord
	replenished map[string]int64 // quantities inventory acknowledged (201)
	ambiguous   map[string]int64 // quantities whose request failed without an answer
	wg          sync.WaitGroup
}

func newShopper(gateway string, c *client, seed uint64, logf func(string, ...any)) *shopper {
	return &shopper{gw: gateway, c: c, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), logf: logf,
		follow: 5 * time.Minute, replenished: map[string]int64{}, ambiguous: map[string]int64{}}
}

// setup registers customers and products and stocks them: plenty units of
// each product in plenty, scarce units of the scarce product, none of the
// sold-out one.
func (s *shopper) setup(ctx context.Context, customers, products int, plenty, scarce int64) error {
	for i := range customers {
		var cu customerevents.Customer
		if err := s.create(ctx, "/customers/v1/customers", map[string]any{
			"email": fmt.Sprintf("chaos-%d-%s@example.com", i, uuid.NewString()[:8]), "name": fmt.Sprintf("Chaos Shopper %d", i),
		}, &cu); err != nil {
			return err
		}
		s.cat.customers = append(s.cat.customers, cu.ID)
		if s.cat.methods == nil {
			s.cat.methods = map[string]map[string]string{}
		}
		s.cat.methods[cu.ID] = map[string]string{}
		for _, token := range []string{tokenOK, tokenDecline, tokenFault, tokenFlaky} {
			var m struct {
				ID string `json:"id"`
			}
			if err := s.create(ctx, "/payments/v1/payment-methods", map[string]any{"token": token, "customer_id": cu.ID}, &m); err != nil {
				return err
			}
			s.cat.methods[cu.ID][token] = m.ID
		}
	}
	add := func(name string, price int64) (string, error) {
		var p productevents.Product
		err := s.create(ctx, "/catalog/v1/products", map[string]any{
			"sku": "CHAOS-" + uuid.NewString()[:13], "name": name, "description": "made by scripts/chaos",
			"price": map[string]any{"amount": price, "currency": "EUR"},
		}, &p)
		return p.ID, err
	}
	for i := range products {
		id, err := add(fmt.Sprintf("Chaos widget %d", i), int64(500+100*i))
		if err != nil {
			return err
		}
		s.cat.plenty = append(s.cat.plenty, id)
	}
	var err error
	if s.cat.scarce, err = add("Chaos rarity", 4200); err != nil {
		return err
	}
	if s.cat.soldOut, err = add("Chaos unobtainium", 9900); err != nil {
		return err
	}
	for _, id := range s.cat.plenty {
		if err := s.replenish(ctx, id, plenty, true); err != nil {
			return err
		}
	}
	return s.replenish(ctx, s.cat.scarce, scarce, true)
}

// create POSTs body to path until it is created (201) and decodes the answer.
func (s *shopper) create(ctx context.Context, path string, body, out any) error {
	for try := 0; ; try++ {
		a, err := s.c.do(ctx, http.MethodPost, s.gw+path, body, nil)
		if err == nil && a.Status == http.StatusCreated {
			return json.Unmarshal(a.Body, out)
		}
		if !retryable(a, err) || try > 50 || !backoff(ctx, try) {
			return fmt.Errorf("POST %s: %v %v", path, a, err)
		}
	}
}

// replenish adds quantity units of product. While inventory has not heard of
// the product yet (404) it retries; a request that fails without an answer
// is not retried (it may have been applied) but counted as ambiguous, unless
// mustSucceed, when the platform is expected to be healthy.
func (s *shopper) replenish(ctx context.Context, product string, quantity int64, mustSucceed bool) error {
	url := s.gw + "/inventory/v1/stock-items/" + product + "/replenishments"
	for try := 0; ; try++ {
		a, err := s.c.do(ctx, http.MethodPost, url, map[string]any{"quantity": quantity}, nil)
		switch {
		case err == nil && a.Status == http.StatusCreated:
			s.mu.Lock()
			s.replenished[product] += quantity
			s.mu.Unlock()
			return nil
		case err == nil && (a.Status == http.StatusNotFound || a.Status == http.StatusServiceUnavailable):
			// Not known yet, or refused before anything happened: safe to retry.
		case !mustSucceed:
			s.mu.Lock()
			s.ambiguous[product] += quantity
			s.mu.Unlock()
			return nil
		}
		if try > 100 || !backoff(ctx, try) {
			return fmt.Errorf("replenishing %s: %v %v", product, a, err)
		}
	}
}

// next makes the record of the next order of plan p.
func (s *shopper) next(scenario string, p plan) *orderRecord {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	r := &orderRecord{Scenario: scenario, Plan: p, Key: "chaos-" + uuid.NewString(), Token: tokenOK}
	n := 1 + s.rng.IntN(3)
	seen := map[string]bool{}
	for range n {
		id := s.cat.plenty[s.rng.IntN(len(s.cat.plenty))]
		if seen[id] {
			continue
		}
		seen[id] = true
		r.Lines = append(r.Lines, lineReq{ProductID: id, Quantity: 1 + s.rng.IntN(3)})
	}
	switch p {
	case planScarce:
		r.Lines = append(r.Lines, lineReq{ProductID: s.cat.scarce, Quantity: 1 + s.rng.IntN(2)})
	case planSoldOut:
		r.Lines = append(r.Lines, lineReq{ProductID: s.cat.soldOut, Quantity: 1})
	case planDecline:
		r.Token = tokenDecline
	case planFault:
		r.Token = tokenFault
	case planFlaky:
		r.Token = tokenFlaky
	}
	s.mu.Lock()
	r.N = len(s.orders) + 1
	s.orders = append(s.orders, r)
	s.mu.Unlock()
	return r
}

// records returns every order record so far.
func (s *shopper) records() []*orderRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*orderRecord(nil), s.orders...)
}

// stream places orders of the mix at rate per second until stop is closed
// (and at least min orders), each followed by its own journey. It returns
// how many it placed; the journeys go on (wait for them with wait).
func (s *shopper) stream(ctx context.Context, scenario string, rate float64, minimum int, stop <-chan struct{}) int {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-stop:
			if n >= minimum {
				return n
			}
		default:
		}
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
		s.mu.Lock()
		p := mix[len(s.orders)%len(mix)]
		s.mu.Unlock()
		s.start(ctx, s.next(scenario, p))
		n++
	}
}

// start runs r's journey in its own goroutine.
func (s *shopper) start(ctx context.Context, r *orderRecord) {
	s.wg.Go(func() { s.journey(ctx, r) })
}

// wait waits for every journey started so far.
func (s *shopper) wait() { s.wg.Wait() }

// journey places the order and does what its plan says.
func (s *shopper) journey(ctx context.Context, r *orderRecord) {
	if !s.place(ctx, r) {
		return
	}
	switch r.Plan {
	case planCancelEarly:
		out := s.cancel(ctx, r)
		r.set(func(r *orderRecord) { r.Cancel = out })
	case planCancelLate:
		if o, ok := s.await(ctx, r, func(o orderevents.Order) bool { return o.Status != "pending" }); ok && o.Status == "confirmed" {
			out := s.cancel(ctx, r)
			r.set(func(r *orderRecord) { r.Cancel = out })
		}
	case planShip, planDeliver:
		o, ok := s.await(ctx, r, func(o orderevents.Order) bool {
			return o.Status != "pending" && (o.Status != "confirmed" || o.ShipmentID != "")
		})
		if !ok || o.Status != "confirmed" {
			return
		}
		out := s.moveShipment(ctx, r, o.ShipmentID, "dispatched")
		r.set(func(r *orderRecord) { r.Dispatch = out })
		if out == accepted && r.Plan == planDeliver {
			out := s.moveShipment(ctx, r, o.ShipmentID, "delivered")
			r.set(func(r *orderRecord) { r.Deliver = out })
		}
	}
}

// place POSTs the order with its Idempotency-Key until the platform answers
// 201 (retrying faults and read models that have not caught up yet).
func (s *shopper) place(ctx context.Context, r *orderRecord) bool {
	customer := s.cat.customers[r.N%len(s.cat.customers)]
	body := map[string]any{
		"customer_id":       customer,
		"lines":             r.Lines,
		"payment_method_id": s.cat.methods[customer][r.Token],
		"shipping_address": map[string]any{
			"name": "Chaos Shopper", "line1": "1 Fault Line", "postal_code": "10115", "city": "Berlin", "country": "DE",
		},
	}
	deadline := time.Now().Add(s.follow)
	for try := 0; ; try++ {
		a, err := s.c.do(ctx, http.MethodPost, s.gw+"/orders/v1/orders", body, map[string]string{"Idempotency-Key": r.Key})
		if err == nil && a.Status == http.StatusCreated {
			var o orderevents.Order
			if err := json.Unmarshal(a.Body, &o); err != nil || o.ID == "" {
				r.set(func(r *orderRecord) { r.PlaceErr = fmt.Sprintf("201 without an order: %v", err) })
				return false
			}
			r.set(func(r *orderRecord) { r.ID, r.Placed = o.ID, time.Now() })
			return true
		}
		if err == nil && !retryable(a, err) && !unknownReference(a) {
			r.set(func(r *orderRecord) { r.PlaceErr = "refused: " + a.String() })
			return false
		}
		if time.Now().After(deadline) || !backoff(ctx, try) {
			r.set(func(r *orderRecord) { r.PlaceErr = fmt.Sprintf("no 201 within %v: last %v %v", s.follow, a, err) })
			return false
		}
	}
}

// unknownReference reports a 422 for a customer or product the orders read
// models do not know yet.
func unknownReference(a answer) bool {
	if a.Status != http.StatusUnprocessableEntity {
		return false
	}
	var p problem.Problem
	if json.Unmarshal(a.Body, &p) != nil || len(p.Errors) == 0 {
		return false
	}
	for _, f := range p.Errors {
		if f.Message != "unknown customer" && f.Message != "unknown product" {
			return false
		}
	}
	return true
}

// await polls the order until done says so, and reports the order.
func (s *shopper) await(ctx context.Context, r *orderRecord, done func(orderevents.Order) bool) (orderevents.Order, bool) {
	deadline := time.Now().Add(s.follow)
	for {
		var o orderevents.Order
		err := s.c.getJSON(ctx, s.gw+"/orders/v1/orders/"+r.ID, &o)
		if err == nil && done(o) {
			r.set(func(r *orderRecord) {
				if r.Settled == 0 {
					r.Settled = time.Since(r.Placed)
				}
			})
			return o, true
		}
		if time.Now().After(deadline) {
			r.set(func(r *orderRecord) {
				r.JourneyErr = fmt.Sprintf("order still %q after %v (%v)", o.Status, s.follow, err)
			})
			return o, false
		}
		select {
		case <-ctx.Done():
			return o, false
		case <-time.After(time.Duration(700+s.jitter(600)) * time.Millisecond):
		}
	}
}

func (s *shopper) jitter(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

// cancel PATCHes the order cancelled. After a request that failed without an
// answer, a 409 is checked against the order: cancelled on the customer's
// request means the lost request did it.
func (s *shopper) cancel(ctx context.Context, r *orderRecord) outcome {
	url := s.gw + "/orders/v1/orders/" + r.ID
	ambiguous := false
	for try := 0; ; try++ {
		a, err := s.c.do(ctx, http.MethodPatch, url, map[string]any{"status": "cancelled"}, nil)
		switch {
		case err == nil && a.Status == http.StatusOK:
			return accepted
		case err == nil && a.Status == http.StatusConflict:
			if ambiguous {
				var o orderevents.Order
				if s.c.getJSON(ctx, url, &o) == nil && o.Status == "cancelled" && o.CancellationReason == "customer_requested" {
					return accepted
				}
			}
			return refused
		case !retryable(a, err):
			r.set(func(r *orderRecord) { r.JourneyErr = "cancel: " + a.String() })
			return outcome("failed: " + a.String())
		}
		ambiguous = ambiguous || err != nil || a.Status == http.StatusBadGateway || a.Status == http.StatusGatewayTimeout
		if try > 200 || !backoff(ctx, try) {
			r.set(func(r *orderRecord) { r.JourneyErr = fmt.Sprintf("cancel: gave up: %v %v", a, err) })
			return outcome(fmt.Sprintf("failed: %v %v", a, err))
		}
	}
}

// moveShipment PATCHes the shipment to status (dispatched or delivered).
func (s *shopper) moveShipment(ctx context.Context, r *orderRecord, shipmentID, status string) outcome {
	url := s.gw + "/shipping/v1/shipments/" + shipmentID
	for try := 0; ; try++ {
		a, err := s.c.do(ctx, http.MethodPatch, url, map[string]any{"status": status}, nil)
		switch {
		case err == nil && a.Status == http.StatusOK:
			return accepted
		case err == nil && a.Status == http.StatusConflict:
			var sh shipmentevents.Shipment
			if s.c.getJSON(ctx, url, &sh) == nil && sh.Status == status {
				return accepted // an earlier try that lost its answer did it
			}
			return refused
		case !retryable(a, err):
			r.set(func(r *orderRecord) { r.JourneyErr = fmt.Sprintf("shipment %s: %v", status, a) })
			return outcome("failed: " + a.String())
		}
		if try > 200 || !backoff(ctx, try) {
			r.set(func(r *orderRecord) { r.JourneyErr = fmt.Sprintf("shipment %s: gave up: %v %v", status, a, err) })
			return outcome(fmt.Sprintf("failed: %v %v", a, err))
		}
	}
}

// stock returns the quantities replenished (acknowledged and ambiguous).
func (s *shopper) stock() (acked, ambiguous map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked, ambiguous = map[string]int64{}, map[string]int64{}
	for k, v := range s.replenished {
		acked[k] = v
	}
	for k, v := range s.ambiguous {
		ambiguous[k] = v
	}
	return acked, ambiguous
}
