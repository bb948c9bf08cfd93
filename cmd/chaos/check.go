package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/portal"
)

// snapshot is the state of the platform at quiescence, read from each
// service's own API (resources) and database (outbox, inbox), and from the
// broker (dead-letter queues).
type snapshot struct {
	Orders       map[string]orderView       // orders API, by order id
	Reservations map[string]reservationView // inventory API, by order id
	Stock        map[string]stockView       // inventory API, by product id
	Replenished  map[string]int64           // inventory API: total quantity replenished, by product id
	Refills      map[string]int             // inventory API: number of replenishments, by product id
	Payments     []paymentView              // payments API
	Shipments    []shipmentView             // shipping API
	// Notifications are the notifications API's (crm.notifications).
	Notifications []notificationView
	Events        []event                    // every service's outbox
	Inbox         map[string]map[string]bool // service name -> uuids in its inbox
	DeadLetters   map[string][]deadLetter    // service name -> its failed messages (internal/failedmsg, read through its API)
	// DeadLetterQueues are the messages still in each service's dead-letter
	// queue: the keeper moves every one into the service's failed messages,
	// so after quiescence there are none.
	DeadLetterQueues map[string][]deadLetter
}

type orderView struct {
	ID, Status, Reason, PaymentID, ShipmentID string
	Lines                                     map[string]int64 // product id -> quantity
}

type reservationView struct {
	OrderID, Status, Reason string
	Lines                   map[string]int64
}

type stockView struct{ Available, Reserved, Shipped, Replenished int64 }

type paymentView struct{ ID, OrderID, Status string }

type shipmentView struct{ ID, OrderID, Status string }

type notificationView struct{ ID, OrderID, Kind, Status, Reason string }

// notificationKinds maps the life-cycle events of an order to the kind of
// notification crm.notifications records for each (one per order and kind).
var notificationKinds = map[string]string{
	"sales.orders.order_confirmed":      "order_confirmed",
	"sales.orders.order_cancelled":      "order_cancelled",
	"sales.orders.order_shipped":        "order_shipped",
	"sales.orders.order_delivered":      "order_delivered",
	"finance.payments.payment_refunded": "payment_refunded",
}

// event is one row of a service's outbox.
type event struct {
	Service string // the publisher (app_id)
	UUID    string
	Type    string // full type, e.g. sales.orders.order_placed
	Subject string // the order id (order, reservation, payment, shipment events), else the entity id
	Sent    bool
}

type deadLetter struct {
	MessageID, Type, Reason string
	Status                  string // of a failed message: unresolved, retrying, resolved or archived
	Kept                    bool   // read from the service's failed messages (not its dead-letter queue)
}

// expectation is what the shopper and the scenarios did, and what the
// platform is therefore expected to show.
type expectation struct {
	Orders      []orderExpect
	Replenished map[string]int64 // acknowledged replenishments, by product
	Ambiguous   map[string]int64 // replenishments whose answer was lost, by product
	Products    []string         // the products to check the stock of
	Poison      []deadLetter     // messages injected to be dead-lettered (Reason: a substring it must contain)
	Consumers   map[string][]string
}

type orderExpect struct {
	N          int
	Scenario   string
	Plan       plan
	ID         string
	PlaceErr   string
	Cancel     outcome
	Dispatch   outcome
	Deliver    outcome
	JourneyErr string
}

// Kinds of violations. The final line counts the first two.
const (
	kindLost      = "lost"      // something acknowledged or published that did not happen or was not handled
	kindDuplicate = "duplicate" // an effect that happened more than once
	kindInvariant = "invariant" // anything else that contradicts the events or the rules
)

type violation struct{ Kind, What string }

func (v violation) String() string { return v.Kind + ": " + v.What }

// report is the result of check.
type report struct {
	Orders       int // orders acknowledged by the platform (201)
	DeadLettered int // dead letters not resolved by a retry: failed messages unresolved or archived (and any left in a dead-letter queue)
	Violations   []violation
}

func (r report) count(kind string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Kind == kind {
			n++
		}
	}
	return n
}

// loadConsumers reads which services handle which event types from the
// AsyncAPI manifests committed under root/contracts (the contracts stage of
// scripts/test keeps them equal to the services' registrations), so that a
// service added to the platform is checked without editing this program.
// The check reads an inbox entry of a type its service does not consume as
// drift.
func loadConsumers(root string) (map[string][]string, error) {
	_, cat, err := portal.Load(os.DirFS(filepath.Join(root, "contracts")))
	if err != nil {
		return nil, fmt.Errorf("reading the AsyncAPI manifests: %w", err)
	}
	consumers := map[string][]string{}
	for _, ev := range cat.Events {
		if len(ev.Consumers) > 0 {
			consumers[ev.Type] = ev.Consumers
		}
	}
	if len(consumers) == 0 {
		return nil, errors.New("the AsyncAPI manifests name no consumed event")
	}
	return consumers, nil
}

func confirmedish(status string) bool {
	return status == "confirmed" || status == "shipped" || status == "delivered"
}

// check compares the snapshot with the expectation and with the rules of the
// saga, and returns every violation found.
func check(s snapshot, e expectation) report {
	var r report
	add := func(kind, format string, args ...any) {
		r.Violations = append(r.Violations, violation{kind, fmt.Sprintf(format, args...)})
	}

	// Events by subject and type, for the per-order counts.
	counts := map[string]map[string]int{}
	byUUID := map[string]event{}
	for _, ev := range s.Events {
		if counts[ev.Subject] == nil {
			counts[ev.Subject] = map[string]int{}
		}
		counts[ev.Subject][ev.Type]++
		byUUID[ev.UUID] = ev
		if !ev.Sent {
			add(kindLost, "outbox of %s: %s %s (subject %s) never published", ev.Service, ev.Type, ev.UUID, ev.Subject)
		}
	}
	paymentsOf := map[string][]paymentView{}
	for _, p := range s.Payments {
		paymentsOf[p.OrderID] = append(paymentsOf[p.OrderID], p)
	}
	shipmentsOf := map[string][]shipmentView{}
	for _, sh := range s.Shipments {
		shipmentsOf[sh.OrderID] = append(shipmentsOf[sh.OrderID], sh)
	}

	known := map[string]bool{}
	for _, x := range e.Orders {
		if x.ID == "" {
			add(kindLost, "order #%d (%s, %s) never acknowledged: %s", x.N, x.Plan, x.Scenario, x.PlaceErr)
			continue
		}
		if known[x.ID] {
			add(kindDuplicate, "order %s acknowledged for two requests (#%d)", x.ID, x.N)
			continue
		}
		known[x.ID] = true
		r.Orders++
		checkOrder(x, s, counts[x.ID], paymentsOf[x.ID], shipmentsOf[x.ID], add)
	}
	var unknown []string
	for id := range s.Orders {
		if !known[id] {
			unknown = append(unknown, id)
		}
	}
	sort.Strings(unknown)
	for _, id := range unknown {
		add(kindDuplicate, "order %s exists but no request of the shopper was acknowledged with it (a second order for one Idempotency-Key?)", id)
	}
	for orderID, ps := range paymentsOf {
		if !known[orderID] {
			add(kindInvariant, "payment %s for unknown order %s", ps[0].ID, orderID)
		}
	}
	for orderID, shs := range shipmentsOf {
		if !known[orderID] {
			add(kindInvariant, "shipment %s for unknown order %s", shs[0].ID, orderID)
		}
	}

	checkStock(s, e, counts, add)
	checkNotifications(s, known, counts, add)
	r.DeadLettered = checkDelivery(s, e, byUUID, add)
	return r
}

// checkOrder checks one acknowledged order against its events, the other
// services' resources, and what the shopper did with it.
func checkOrder(x orderExpect, s snapshot, n map[string]int, payments []paymentView, shipments []shipmentView, add func(kind, format string, args ...any)) {
	o, ok := s.Orders[x.ID]
	name := fmt.Sprintf("order %s (#%d, %s, %s)", x.ID, x.N, x.Plan, x.Scenario)
	if !ok {
		add(kindLost, "%s acknowledged with 201 but unknown to orders", name)
		return
	}
	if o.Status == "pending" {
		add(kindLost, "%s still pending: its saga stopped (%s)", name, x.JourneyErr)
	}
	at := func(status, reason string) string {
		if reason != "" {
			return status + "/" + reason
		}
		return status
	}
	state := at(o.Status, o.Reason)

	// Each event about the order at most once, and the ones its state implies exactly once.
	for typ, c := range n {
		if c > 1 {
			add(kindDuplicate, "%s: %s published %d times", name, typ, c)
		}
	}
	has := func(typ string) bool { return n[typ] > 0 }
	const (
		placed, confirmed, cancelled = "sales.orders.order_placed", "sales.orders.order_confirmed", "sales.orders.order_cancelled"
		shipped, delivered           = "sales.orders.order_shipped", "sales.orders.order_delivered"
		reserved, rejected, released = "logistics.inventory.stock_reserved", "logistics.inventory.stock_reservation_rejected", "logistics.inventory.stock_released"
		stockShipped                 = "logistics.inventory.stock_shipped"
		captured, declined, refunded = "finance.payments.payment_captured", "finance.payments.payment_declined", "finance.payments.payment_refunded"
		scheduled, shCancelled       = "logistics.shipments.shipment_scheduled", "logistics.shipments.shipment_cancelled"
		dispatched, shDelivered      = "logistics.shipments.shipment_dispatched", "logistics.shipments.shipment_delivered"
	)
	if !has(placed) {
		add(kindLost, "%s: no order_placed in the outbox of orders", name)
	}
	switch {
	case o.Status == "confirmed" && (!has(confirmed) || has(cancelled) || has(shipped)):
		add(kindInvariant, "%s is confirmed but its events are %v", name, n)
	case o.Status == "shipped" && (!has(confirmed) || !has(shipped) || has(cancelled) || has(delivered)):
		add(kindInvariant, "%s is shipped but its events are %v", name, n)
	case o.Status == "delivered" && (!has(confirmed) || !has(shipped) || !has(delivered) || has(cancelled)):
		add(kindInvariant, "%s is delivered but its events are %v", name, n)
	case o.Status == "cancelled" && (!has(cancelled) || has(shipped) || (has(confirmed) && o.Reason != "customer_requested")):
		add(kindInvariant, "%s is %s but its events are %v", name, state, n)
	}

	// Inventory: one answer to order_placed; a hold only for a live order.
	res, ok := s.Reservations[x.ID]
	switch {
	case !ok:
		add(kindLost, "%s: inventory has no reservation for it", name)
	case has(reserved) && has(rejected):
		add(kindDuplicate, "%s: both stock_reserved and stock_reservation_rejected", name)
	case !has(reserved) && !has(rejected):
		add(kindLost, "%s: inventory never answered order_placed", name)
	case o.Status == "confirmed" && (res.Status != "held" || !has(reserved) || has(released) || has(stockShipped)):
		add(kindInvariant, "%s: reservation %s, events %v", name, at(res.Status, res.Reason), n)
	case (o.Status == "shipped" || o.Status == "delivered") && (res.Status != "shipped" || !has(reserved) || !has(stockShipped) || has(released)):
		add(kindInvariant, "%s: %s, but its reservation is %s and stock_shipped %d times", name, o.Status, at(res.Status, res.Reason), n[stockShipped])
	case o.Status == "cancelled" && has(reserved) && (res.Status != "released" || !has(released)):
		add(kindInvariant, "%s: stock was reserved, but the reservation is %s and stock_released %d times", name, res.Status, n[released])
	case o.Status == "cancelled" && has(rejected) && res.Status != "rejected":
		add(kindInvariant, "%s: reservation rejected by event but %s", name, at(res.Status, res.Reason))
	case o.Reason == "out_of_stock" && !has(rejected):
		add(kindInvariant, "%s: cancelled out_of_stock without stock_reservation_rejected", name)
	}
	if ok && confirmedish(o.Status) {
		for p, q := range o.Lines {
			if res.Lines[p] != q {
				add(kindInvariant, "%s: holds %d of %s, the order has %d", name, res.Lines[p], p, q)
			}
		}
	}

	// Payments: one charge at most, only after a reservation; refunded exactly once when cancelled after capture.
	if len(payments) > 1 {
		add(kindDuplicate, "%s: %d payments", name, len(payments))
	}
	if has(captured) && has(declined) {
		add(kindDuplicate, "%s: both payment_captured and payment_declined", name)
	}
	pay := paymentView{}
	if len(payments) > 0 {
		pay = payments[0]
	}
	switch {
	case (has(captured) || has(declined)) && !has(reserved):
		add(kindInvariant, "%s: charged without a stock reservation", name)
	case confirmedish(o.Status) && (!has(captured) || has(refunded) || pay.Status != "captured" || o.PaymentID != pay.ID):
		add(kindInvariant, "%s: payment %s %q (order says %q), events %v", name, pay.ID, pay.Status, o.PaymentID, n)
	case o.Status == "cancelled" && has(captured) && (!has(refunded) || pay.Status != "refunded"):
		add(kindInvariant, "%s: captured payment %s of a cancelled order is %q, refunded %d times", name, pay.ID, pay.Status, n[refunded])
	case o.Status == "cancelled" && !has(captured) && (has(refunded) || pay.Status == "captured" || pay.Status == "refunded"):
		add(kindInvariant, "%s: payment %s %q and %d refunds without a capture", name, pay.ID, pay.Status, n[refunded])
	case o.Reason == "payment_declined" && (!has(declined) || pay.Status != "declined"):
		add(kindInvariant, "%s: payment %s %q, events %v", name, pay.ID, pay.Status, n)
	}

	// Shipping: a shipment only for a confirmed order; it follows the order.
	if len(shipments) > 1 {
		add(kindDuplicate, "%s: %d shipments", name, len(shipments))
	}
	ship := shipmentView{}
	if len(shipments) > 0 {
		ship = shipments[0]
	}
	want := map[string]string{"confirmed": "scheduled", "shipped": "dispatched", "delivered": "delivered"}[o.Status]
	switch {
	case (ship.ID != "" || has(scheduled)) && !has(confirmed):
		add(kindInvariant, "%s: shipment %s without order_confirmed", name, ship.ID)
	case want != "" && (ship.Status != want || !has(scheduled) || o.ShipmentID != ship.ID):
		add(kindInvariant, "%s: shipment %s is %q (order says %q), want %s; events %v", name, ship.ID, ship.Status, o.ShipmentID, want, n)
	case o.Status == "cancelled" && ship.ID != "" && (ship.Status != "cancelled" || !has(shCancelled) || has(dispatched)):
		add(kindInvariant, "%s: shipment %s of a cancelled order is %q, events %v", name, ship.ID, ship.Status, n)
	}

	// What the shopper did, and what each plan leads to.
	switch {
	case x.Cancel == accepted:
		if state != "cancelled/customer_requested" {
			add(kindInvariant, "%s: cancellation accepted (200) but the order is %s", name, state)
		}
	case x.Deliver == accepted:
		if o.Status != "delivered" {
			add(kindInvariant, "%s: delivery accepted but the order is %s", name, state)
		}
	case x.Dispatch == accepted:
		if o.Status != "shipped" {
			add(kindInvariant, "%s: dispatch accepted but the order is %s", name, state)
		}
	case x.Plan == planSoldOut:
		if state != "cancelled/out_of_stock" {
			add(kindInvariant, "%s: a product without stock, but the order is %s", name, state)
		}
	case x.Plan == planDecline:
		if state != "cancelled/payment_declined" {
			add(kindInvariant, "%s: paid with %s, but the order is %s", name, tokenDecline, state)
		}
	case x.Plan == planScarce:
		if !confirmedish(o.Status) && state != "cancelled/out_of_stock" {
			add(kindInvariant, "%s: scarce product, but the order is %s", name, state)
		}
	case x.Plan == planCancelEarly || x.Plan == planCancelLate:
		if x.Cancel == refused && !confirmedish(o.Status) && o.Status != "cancelled" {
			add(kindInvariant, "%s: cancellation refused (409) but the order is %s", name, state)
		}
	default: // confirm, ship, deliver (not moved), fault (after replay), flaky
		if !confirmedish(o.Status) {
			add(kindInvariant, "%s: should be confirmed, but is %s", name, state)
		}
	}
}

// checkStock checks every product's stock against its replenishments and the
// orders holding it: reserved = what held reservations hold = the lines of
// confirmed orders; shipped = what shipped reservations shipped = the lines of
// shipped and delivered orders; available = replenished − reserved − shipped;
// available + reserved + shipped = the replenished total inventory shows;
// none negative.
func checkStock(s snapshot, e expectation, counts map[string]map[string]int, add func(kind, format string, args ...any)) {
	for _, p := range e.Products {
		st, ok := s.Stock[p]
		if !ok {
			add(kindLost, "product %s has no stock item in inventory", p)
			continue
		}
		repl := s.Replenished[p]
		if repl < e.Replenished[p] {
			add(kindLost, "product %s: %d units replenished with 201, inventory counts %d", p, e.Replenished[p], repl)
		}
		if repl > e.Replenished[p]+e.Ambiguous[p] {
			add(kindDuplicate, "product %s: inventory counts %d units replenished, the shopper asked for %d (+%d unanswered)", p, repl, e.Replenished[p], e.Ambiguous[p])
		}
		if ev := counts[p]["logistics.inventory.stock_replenished"]; ev != s.Refills[p] {
			add(kindInvariant, "product %s: %d replenishments but %d stock_replenished events", p, s.Refills[p], ev)
		}
		var held, confirmed, shippedRes, shippedOrders int64
		for _, r := range s.Reservations {
			switch r.Status {
			case "held":
				held += r.Lines[p]
			case "shipped":
				shippedRes += r.Lines[p]
			}
		}
		for _, o := range s.Orders {
			switch o.Status {
			case "confirmed":
				confirmed += o.Lines[p]
			case "shipped", "delivered":
				shippedOrders += o.Lines[p]
			}
		}
		if st.Available < 0 || st.Reserved < 0 || st.Shipped < 0 {
			add(kindInvariant, "product %s: negative stock (available %d, reserved %d, shipped %d)", p, st.Available, st.Reserved, st.Shipped)
		}
		if st.Reserved != held || held != confirmed {
			add(kindInvariant, "product %s: reserved %d, held by reservations %d, in confirmed orders %d", p, st.Reserved, held, confirmed)
		}
		if st.Shipped != shippedRes || shippedRes != shippedOrders {
			add(kindInvariant, "product %s: shipped %d, by shipped reservations %d, in shipped and delivered orders %d", p, st.Shipped, shippedRes, shippedOrders)
		}
		if st.Available != repl-confirmed-shippedOrders {
			add(kindInvariant, "product %s: available %d, want replenished %d − reserved for confirmed orders %d − shipped %d = %d", p, st.Available, repl, confirmed, shippedOrders, repl-confirmed-shippedOrders)
		}
		if st.Available+st.Reserved+st.Shipped != st.Replenished || st.Replenished != repl {
			add(kindInvariant, "product %s: available %d + reserved %d + shipped %d != replenished %d (stock item), %d (replenishments)", p, st.Available, st.Reserved, st.Shipped, st.Replenished, repl)
		}
	}
}

// checkDelivery checks that every published event was handled by every
// service that consumes its type (its uuid is in their inbox), that nothing
// else was handled, and that every dead letter is accounted for: the keeper
// moved each one from its dead-letter queue into the service's failed
// messages (none is left in a queue), a retried one was handled (resolved)
// or failed again (unresolved), never left in between (retrying), and the
// dead letters not resolved are exactly the poison messages, each with a
// reason. It returns how many dead letters are not resolved.
func checkDelivery(s snapshot, e expectation, byUUID map[string]event, add func(kind, format string, args ...any)) int {
	dead := map[string]map[string]deadLetter{} // service -> message id -> dead letter
	total := 0
	for svc, dls := range s.DeadLetterQueues {
		for _, d := range dls {
			add(kindLost, "dead letter %s (%s) left in the dead-letter queue of %s: not kept in its failed messages", d.MessageID, d.Type, svc)
		}
	}
	for svc, dls := range s.DeadLetters {
		dead[svc] = map[string]deadLetter{}
		for _, d := range dls {
			switch d.Status {
			case "resolved":
				continue // handled after a retry: accounted for
			case "retrying":
				add(kindLost, "failed message %s (%s) in %s was retried but neither handled nor dead-lettered again", d.MessageID, d.Type, svc)
			}
			total++
			dead[svc][d.MessageID] = d
			if strings.TrimSpace(d.Reason) == "" {
				add(kindInvariant, "dead letter %s (%s) in %s has no reason", d.MessageID, d.Type, svc)
			}
		}
	}
	poison := map[string]deadLetter{}
	for _, p := range e.Poison {
		poison[p.MessageID] = p
		for _, svc := range e.Consumers[p.Type] {
			d, ok := dead[svc][p.MessageID]
			switch {
			case !ok:
				add(kindInvariant, "poison message %s (%s) is not in the failed messages of %s", p.MessageID, p.Type, svc)
			case !strings.Contains(d.Reason, p.Reason):
				add(kindInvariant, "poison message %s in %s: reason %q does not say %q", p.MessageID, svc, d.Reason, p.Reason)
			}
		}
	}
	for svc, dls := range dead {
		for id, d := range dls {
			if _, ok := poison[id]; !ok {
				add(kindLost, "unexpected dead letter in %s: %s %s: %s", svc, d.Type, id, d.Reason)
			}
		}
	}

	// Every event handled by each consumer, once (the inbox has one row per uuid).
	var uuids []string
	for id := range byUUID {
		uuids = append(uuids, id)
	}
	sort.Strings(uuids)
	for _, id := range uuids {
		ev := byUUID[id]
		for _, svc := range e.Consumers[ev.Type] {
			if !s.Inbox[svc][id] {
				add(kindLost, "%s %s (subject %s) never handled by %s", ev.Type, id, ev.Subject, svc)
			}
		}
	}
	for svc, inbox := range s.Inbox {
		for id := range inbox {
			ev, ok := byUUID[id]
			switch {
			case !ok:
				add(kindInvariant, "%s handled event %s, which no outbox holds", svc, id)
			case !contains(e.Consumers[ev.Type], svc):
				add(kindInvariant, "%s handled %s %s but is not listed as its consumer in its AsyncAPI manifest", svc, ev.Type, id)
			}
		}
	}
	return total
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkNotifications checks crm.notifications against the events: one
// notification per life-cycle event of each order (notificationKinds), never
// two, none without its event, none for an order nobody placed, and none
// left pending at quiescence (every customer of the run is registered).
func checkNotifications(s snapshot, known map[string]bool, counts map[string]map[string]int, add func(kind, format string, args ...any)) {
	got := map[string]map[string][]notificationView{} // order -> kind -> notifications
	for _, n := range s.Notifications {
		if !known[n.OrderID] {
			add(kindInvariant, "notification %s (%s) for unknown order %s", n.ID, n.Kind, n.OrderID)
			continue
		}
		if got[n.OrderID] == nil {
			got[n.OrderID] = map[string][]notificationView{}
		}
		got[n.OrderID][n.Kind] = append(got[n.OrderID][n.Kind], n)
		if n.Status == "pending" {
			add(kindLost, "notification %s (%s of order %s) still pending: %s", n.ID, n.Kind, n.OrderID, n.Reason)
		}
	}
	var orders []string
	for id := range known {
		orders = append(orders, id)
	}
	sort.Strings(orders)
	types := make([]string, 0, len(notificationKinds))
	for typ := range notificationKinds {
		types = append(types, typ)
	}
	sort.Strings(types)
	for _, id := range orders {
		for _, typ := range types {
			kind := notificationKinds[typ]
			ns := got[id][kind]
			switch published := counts[id][typ] > 0; {
			case len(ns) > 1:
				add(kindDuplicate, "order %s: %d notifications %s, want one", id, len(ns), kind)
			case published && len(ns) == 0:
				add(kindLost, "order %s: %s published, but no notification %s", id, typ, kind)
			case !published && len(ns) > 0:
				add(kindInvariant, "order %s: notification %s %s without %s", id, kind, ns[0].ID, typ)
			}
		}
	}
}
