// Package delivery is the sender of crm.notifications: an actor of the
// service's run group that sends recorded notifications after the
// transaction that recorded them, at most once each.
//
// Each round it takes a batch (Store.Claim marks them sending and commits
// before any SMTP conversation starts: no other sender takes them), sends
// each through the Mailer, and records the outcome: sent (with
// notification_sent), or failed with the reason and the time of the next
// attempt (notification.RetryDelay) — or no next attempt when the server
// failed after it had the whole message, since it may have been delivered.
// Without an SMTP server configured, it records every pending notification
// with a recipient as not_sent, "no SMTP server configured", and sends them
// once a server is configured (the service restarted with SMTP_ADDR):
// nothing is lost. Notifications left sending by a sender that stopped
// mid-conversation become failed, never retried, after StaleAfter.
package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/sagittarius-a/sagittarius/services/notifications/mailer"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

// Store is what the sender needs from storage (implemented by mysql.Store);
// each method is one transaction.
type Store interface {
	Claim(ctx context.Context, now time.Time, limit int) ([]notification.Notification, error)
	Sent(ctx context.Context, id string, at time.Time) error
	Failed(ctx context.Context, id, reason string, next *time.Time) error
	MarkNotSent(ctx context.Context, reason string) (int64, error)
	ReleaseStale(ctx context.Context, before time.Time) (int64, error)
}

// Mailer sends one message (implemented by mailer.Mailer).
type Mailer interface {
	Configured() bool
	Send(ctx context.Context, msg mailer.Message) error
}

// Defaults of a Sender.
const (
	DefaultInterval   = time.Second
	DefaultBatch      = 20
	DefaultStaleAfter = 10 * time.Minute
)

// Sender sends notifications. Run it once per process (p.Go); several
// processes may run senders on the same database.
type Sender struct {
	store  Store
	mail   Mailer
	logger *slog.Logger
	now    func() time.Time

	Interval   time.Duration // how often to look for work
	Batch      int           // notifications per claim
	StaleAfter time.Duration // how long a claim may stay sending
}

// New returns a Sender on store and mail. logger may be nil.
func New(store Store, mail Mailer, logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.Default()
	}
	return &Sender{store: store, mail: mail, logger: logger, now: time.Now,
		Interval: DefaultInterval, Batch: DefaultBatch, StaleAfter: DefaultStaleAfter}
}

// Run sends until ctx is done, then returns nil. Database errors are logged
// and the round is tried again later: the process does not stop for them.
func (s *Sender) Run(ctx context.Context) error {
	if !s.mail.Configured() {
		s.logger.Warn("no SMTP server configured (SMTP_ADDR): notifications are recorded as not_sent and sent once a server is configured")
	}
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if err := s.Round(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("delivery round", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round does one round of work: stale claims, then one batch (or, without a
// server, not_sent for every pending notification with a recipient).
func (s *Sender) Round(ctx context.Context) error {
	if n, err := s.store.ReleaseStale(ctx, s.now().Add(-s.StaleAfter)); err != nil {
		return err
	} else if n > 0 {
		s.logger.Warn("notifications left sending by a stopped sender: failed, not retried", "count", n)
	}
	if !s.mail.Configured() {
		n, err := s.store.MarkNotSent(ctx, notification.ReasonNoServer)
		if n > 0 {
			s.logger.Info("notifications not sent", "count", n, "reason", notification.ReasonNoServer)
		}
		return err
	}
	batch, err := s.store.Claim(ctx, s.now(), s.Batch)
	if err != nil {
		return err
	}
	for _, n := range batch {
		if err := s.send(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// send sends n (claimed) and records the outcome. The outcome is recorded
// with a context of its own: a shutdown during the conversation must not
// leave a sent notification recorded as sending.
func (s *Sender) send(ctx context.Context, n notification.Notification) error {
	err := s.mail.Send(ctx, mailer.Message{To: n.Recipient, Subject: n.Subject, Text: n.Text, MessageID: n.ID, Date: s.now()})
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		s.logger.Info("notification sent", "id", n.ID, "order_id", n.OrderID, "kind", n.Kind)
		return s.store.Sent(rec, n.ID, s.now())
	}
	var next *time.Time
	if !mailer.MayHaveBeenDelivered(err) {
		at := s.now().Add(notification.RetryDelay(n.Attempts))
		next = &at
	}
	s.logger.Warn("notification not delivered", "id", n.ID, "order_id", n.OrderID, "kind", n.Kind, "attempt", n.Attempts,
		"error", err, "retry_at", next)
	return s.store.Failed(rec, n.ID, err.Error(), next)
}
