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
