package eventbus

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// declareTopology declares, idempotently, everything the service needs:
//
//	sagittarius-a            fanout exchange, durable (declared, or checked passively when this user may not declare it)
//	S                        the service queue, durable, bound to sagittarius-a and to S.retry with key S
//	S.retry                  the service's own direct exchange for retries and dead letters
//	S.retry.<ms>             one delay queue per retry delay: TTL <ms>, then dead-lettered to S.retry with key S
//	S.dead-letter            the dead-letter queue, bound to S.retry with key S.dead-letter
func (b *Bus) declareTopology(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open topology channel: %w", err)
	}
	if err := ch.ExchangeDeclare(Exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
			return fmt.Errorf("declare exchange %s: %w", Exchange, err)
		}
		// Least-privilege users may not declare the shared exchange: check it exists.
		if ch, err = conn.Channel(); err != nil {
			return fmt.Errorf("open topology channel: %w", err)
		}
		if err := ch.ExchangeDeclarePassive(Exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("exchange %s does not exist and %s may not declare it (run scripts/up to provision the broker): %w", Exchange, b.cfg.Service, err)
		}
	}
	defer ch.Close()

	s := b.cfg.Service
	rx := b.cfg.retryExchange()
	if err := ch.ExchangeDeclare(rx, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", rx, err)
	}

	mainArgs := b.queueArgs()
	if b.cfg.QueueType == QueueQuorum {
		// Redeliveries of a message whose handler crashes the process are
		// capped; past the cap the broker dead-letters it (at least once).
		mainArgs["x-delivery-limit"] = int64(b.cfg.DeliveryLimit)
		mainArgs["x-dead-letter-exchange"] = rx
		mainArgs["x-dead-letter-routing-key"] = b.cfg.deadLetterQueue()
		mainArgs["x-dead-letter-strategy"] = "at-least-once"
		mainArgs["x-overflow"] = "reject-publish"
	}
	if err := b.declareQueue(ch, s, mainArgs); err != nil {
		return err
	}
	if err := ch.QueueBind(s, "", Exchange, false, nil); err != nil {
		return fmt.Errorf("bind %s to %s: %w", s, Exchange, err)
	}
	if err := ch.QueueBind(s, s, rx, false, nil); err != nil {
		return fmt.Errorf("bind %s to %s: %w", s, rx, err)
	}

	seen := map[string]bool{}
	for _, d := range b.cfg.RetryDelays {
		q := b.cfg.retryQueue(d)
		if seen[q] {
			continue
		}
		seen[q] = true
		args := b.queueArgs()
		args["x-message-ttl"] = d.Milliseconds()
		args["x-dead-letter-exchange"] = rx
		args["x-dead-letter-routing-key"] = s
		if b.cfg.QueueType == QueueQuorum {
			args["x-dead-letter-strategy"] = "at-least-once"
			args["x-overflow"] = "reject-publish"
		}
		if err := b.declareQueue(ch, q, args); err != nil {
			return err
		}
		if err := ch.QueueBind(q, q, rx, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s: %w", q, rx, err)
		}
	}

	dlq := b.cfg.deadLetterQueue()
	if err := b.declareQueue(ch, dlq, b.queueArgs()); err != nil {
		return err
	}
	if err := ch.QueueBind(dlq, dlq, rx, false, nil); err != nil {
		return fmt.Errorf("bind %s to %s: %w", dlq, rx, err)
	}
	return nil
}

func (b *Bus) queueArgs() amqp.Table {
	return amqp.Table{"x-queue-type": string(b.cfg.QueueType)}
}

func (b *Bus) declareQueue(ch *amqp.Channel, name string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			return fmt.Errorf("queue %s exists with other arguments than %v (a different queue type or retry delay?): delete it or match the configuration: %w", name, args, err)
		}
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	return nil
}
