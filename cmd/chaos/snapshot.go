package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// collect reads the snapshot: resources through the gateway (every page of
// every collection), outboxes and inboxes from the services' databases, dead
// letters from each service's failed messages (its API, through the gateway:
// the keeper moves them there from the dead-letter queue) and whatever is
// still in the dead-letter queues (peeked and requeued; the keeper should
// have left nothing).
func collect(ctx context.Context, p *platform.Platform, c *client) (snapshot, error) {
	s := snapshot{
		Orders: map[string]orderView{}, Reservations: map[string]reservationView{}, Stock: map[string]stockView{},
		Replenished: map[string]int64{}, Refills: map[string]int{},
		Inbox: map[string]map[string]bool{}, DeadLetters: map[string][]deadLetter{}, DeadLetterQueues: map[string][]deadLetter{},
	}
	gw := p.Gateway
	err := eachItem(ctx, c, gw+"/orders/v1/orders?size=100", func(o orderevents.Order) {
		v := orderView{ID: o.ID, Status: o.Status, Reason: o.CancellationReason, PaymentID: o.PaymentID, ShipmentID: o.ShipmentID, Lines: map[string]int64{}}
		for _, l := range o.Lines {
			v.Lines[l.ProductID] += int64(l.Quantity)
		}
		s.Orders[o.ID] = v
	})
	if err != nil {
		return s, err
	}
	err = eachItem(ctx, c, gw+"/inventory/v1/reservations?size=100", func(r stockevents.Reservation) {
		v := reservationView{OrderID: r.OrderID, Status: r.Status, Reason: r.Reason, Lines: map[string]int64{}}
		for _, l := range r.Lines {
			v.Lines[l.ProductID] += int64(l.Quantity)
		}
		s.Reservations[r.OrderID] = v
	})
	if err != nil {
		return s, err
	}
	err = eachItem(ctx, c, gw+"/inventory/v1/stock-items?size=100", func(st stockevents.Stock) {
		s.Stock[st.ProductID] = stockView{Available: st.Available, Reserved: st.Reserved, Shipped: st.Shipped, Replenished: st.Replenished}
	})
	if err != nil {
		return s, err
	}
	type replenishment struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	}
	err = eachItem(ctx, c, gw+"/inventory/v1/replenishments?size=100", func(r replenishment) {
		s.Replenished[r.ProductID] += r.Quantity
		s.Refills[r.ProductID]++
	})
	if err != nil {
		return s, err
	}
	err = eachItem(ctx, c, gw+"/payments/v1/payments?size=100", func(py paymentevents.Payment) {
		s.Payments = append(s.Payments, paymentView{ID: py.ID, OrderID: py.OrderID, Status: py.Status})
	})
	if err != nil {
		return s, err
	}
	err = eachItem(ctx, c, gw+"/shipping/v1/shipments?size=100", func(sh shipmentevents.Shipment) {
		s.Shipments = append(s.Shipments, shipmentView{ID: sh.ID, OrderID: sh.OrderID, Status: sh.Status})
	})
	if err != nil {
		return s, err
	}
	err = eachItem(ctx, c, gw+"/notifications/v1/notifications?size=100", func(n notificationevents.Notification) {
		s.Notifications = append(s.Notifications, notificationView{ID: n.ID, OrderID: n.OrderID, Kind: n.Kind, Status: n.Status, Reason: n.Reason})
	})
	if err != nil {
		return s, err
	}

	for _, svc := range p.Services() {
		db, err := p.ServiceDB(svc.Dir)
		if err != nil {
			return s, err
		}
		var rows []struct {
			UUID string `db:"uuid"`
			Type string `db:"type"`
			Sent bool   `db:"sent"`
			Body []byte `db:"body"`
		}
		if err := db.SelectContext(ctx, &rows, `SELECT uuid, type, sent_at IS NOT NULL AS sent, body FROM eventbus_outbox`); err != nil {
			return s, fmt.Errorf("outbox of %s: %w", svc.Name, err)
		}
		for _, r := range rows {
			s.Events = append(s.Events, event{Service: svc.Name, UUID: r.UUID, Type: r.Type, Subject: subject(r.Body), Sent: r.Sent})
		}
		var inbox []string
		if err := db.SelectContext(ctx, &inbox, `SELECT uuid FROM eventbus_inbox`); err != nil {
			return s, fmt.Errorf("inbox of %s: %w", svc.Name, err)
		}
		s.Inbox[svc.Name] = map[string]bool{}
		for _, id := range inbox {
			s.Inbox[svc.Name][id] = true
		}
		dls, err := deadLetters(ctx, p, svc.Name)
		if err != nil {
			return s, err
		}
		s.DeadLetterQueues[svc.Name] = dls
		kept, err := failedMessages(ctx, c, gw, svc.Dir)
		if err != nil {
			return s, err
		}
		s.DeadLetters[svc.Name] = kept
	}
	return s, nil
}

// deadLetters peeks at every message in a service's dead-letter queue.
func deadLetters(ctx context.Context, p *platform.Platform, service string) ([]deadLetter, error) {
	msgs, err := p.Broker.Peek(ctx, p.Vhost, service+".dead-letter", 10000)
	if err != nil {
		return nil, err
	}
	out := make([]deadLetter, 0, len(msgs))
	for _, m := range msgs {
		reason, _ := m.Properties.Headers["x-dead-letter-reason"].(string)
		out = append(out, deadLetter{MessageID: m.Properties.MessageID, Type: m.Properties.Type, Reason: reason})
	}
	return out, nil
}

// failedMessage is what the check reads of a failed message (internal/failedmsg).
type failedMessage struct {
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Malformed string `json:"malformed"`
}

// failedMessages reads every failed message of the service at dir through
// the gateway, as an operator would.
func failedMessages(ctx context.Context, c *client, gw, dir string) ([]deadLetter, error) {
	var out []deadLetter
	err := eachItem(ctx, c, gw+"/"+dir+"/v1/failed-messages?size=100", func(m failedMessage) {
		out = append(out, deadLetter{MessageID: m.MessageID, Type: m.Type, Reason: m.Reason, Status: m.Status, Kept: true})
	})
	if err != nil {
		return nil, fmt.Errorf("failed messages of %s: %w", dir, err)
	}
	return out, nil
}

// subject is what an event is about: the order id for events whose entity
// names one (order, reservation, payment, shipment), else the entity's id
// (product_id for stock).
func subject(body []byte) string {
	var payload map[string]json.RawMessage
	if json.Unmarshal(body, &payload) != nil {
		return ""
	}
	for k, raw := range payload {
		if k == "uuid" || k == "fired_at" {
			continue
		}
		var ent struct {
			ID        string `json:"id"`
			OrderID   string `json:"order_id"`
			ProductID string `json:"product_id"`
		}
		if json.Unmarshal(raw, &ent) != nil {
			continue
		}
		switch {
		case k == "order":
			return ent.ID
		case ent.OrderID != "":
			return ent.OrderID
		case ent.ProductID != "":
			return ent.ProductID
		default:
			return ent.ID
		}
	}
	return ""
}

// eachItem GETs a HAL collection page by page (following next) and calls f
// for every embedded item.
func eachItem[T any](ctx context.Context, c *client, url string, f func(T)) error {
	for page := 0; url != ""; page++ {
		if page > 10000 {
			return fmt.Errorf("%s: too many pages", url)
		}
		var coll struct {
			Embedded map[string][]T `json:"_embedded"`
			Links    hal.Links      `json:"_links"`
		}
		if err := c.getJSON(ctx, url, &coll); err != nil {
			return err
		}
		for _, items := range coll.Embedded {
			for _, it := range items {
				f(it)
			}
		}
		next := coll.Links.Href("next")
		if next == url {
			return fmt.Errorf("%s: next links to itself", url)
		}
		url = next
	}
	return nil
}
