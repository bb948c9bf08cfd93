package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// poisonMessage is a message published on sagittarius-a that no handler can
// accept, with the reason the bus must give when it dead-letters it.
type poisonMessage struct {
	Type, AppID, Body string
	Reason            string // a substring of the expected x-dead-letter-reason
}

// poisons returns the poison messages injected by the poison scenario: a
// payload that is not JSON, an event whose app_id does not own its type, and
// an order_placed whose order does not decode. Every consumer of
// order_placed must dead-letter each of them, with a reason.
func poisons() []poisonMessage {
	fired := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	return []poisonMessage{
		{Type: "sales.orders.order_placed", AppID: "sales.orders", Body: `{"uuid": "not even JSON`,
			Reason: "payload is not a JSON object"},
		{Type: "sales.orders.order_placed", AppID: "finance.payments",
			Body:   `{"uuid":"%s","fired_at":"` + fired + `","order":{"id":"forged"}}`,
			Reason: "does not publish type"},
		{Type: "sales.orders.order_placed", AppID: "sales.orders",
			Body:   `{"uuid":"%s","fired_at":"` + fired + `","order":{"id":42,"lines":"not a list"}}`,
			Reason: "entity does not decode"},
	}
}

// publishPoison publishes m on sagittarius-a as the broker administrator
// (as a compromised or broken publisher would) and returns its message id.
func publishPoison(ctx context.Context, p *platform.Platform, m poisonMessage) (string, error) {
	conn, err := amqp.Dial(p.AdminAMQPURL())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return "", err
	}
	if err := ch.Confirm(false); err != nil {
		return "", err
	}
	id := uuid.NewString()
	body := m.Body
	if strings.Contains(body, "%s") {
		body = fmt.Sprintf(body, id)
	}
	dc, err := ch.PublishWithDeferredConfirm(platform.Exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: id, Type: m.Type, AppId: m.AppID, Timestamp: time.Now(), Body: []byte(body),
	})
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ok, err := dc.WaitContext(cctx); err != nil || !ok {
		return "", fmt.Errorf("poison message not confirmed: %v", err)
	}
	return id, nil
}

// replayDeadLetters moves the messages of service's dead-letter queue for
// which match is true back to the service's queue, through its own retry
// exchange (as an operator's replay tool would, once the cause is fixed),
// without the dead-letter headers, so they count as first attempts. The
// others stay in the dead-letter queue. It returns the replayed messages'
// reasons.
func replayDeadLetters(ctx context.Context, p *platform.Platform, service string, match func(d amqp.Delivery) bool) ([]string, error) {
	conn, err := amqp.Dial(p.AdminAMQPURL())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	var keep []amqp.Delivery
	defer func() {
		for _, d := range keep {
			_ = d.Nack(false, true)
		}
	}()
	var reasons []string
	for range 100000 {
		d, ok, err := ch.Get(service+".dead-letter", false)
		if err != nil {
			return reasons, err
		}
		if !ok {
			break
		}
		if !match(d) {
			keep = append(keep, d)
			continue
		}
		h := amqp.Table{}
		for k, v := range d.Headers {
			if !strings.HasPrefix(k, "x-") {
				h[k] = v
			}
		}
		dc, err := ch.PublishWithDeferredConfirm(service+".retry", service, false, false, amqp.Publishing{
			Headers: h, ContentType: d.ContentType, DeliveryMode: amqp.Persistent, MessageId: d.MessageId,
			Type: d.Type, AppId: d.AppId, Timestamp: d.Timestamp, CorrelationId: d.CorrelationId, Body: d.Body,
		})
		if err != nil {
			return reasons, err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ok, err = dc.WaitContext(cctx)
		cancel()
		if err != nil || !ok {
			return reasons, fmt.Errorf("replayed copy of %s not confirmed: %v", d.MessageId, err)
		}
		if err := d.Ack(false); err != nil {
			return reasons, err
		}
		r, _ := d.Headers["x-dead-letter-reason"].(string)
		reasons = append(reasons, r)
	}
	return reasons, nil
}
