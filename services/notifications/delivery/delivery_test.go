package delivery

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/notifications/mailer"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

// fakeStore records what the sender asked of it.
type fakeStore struct {
	claim    []notification.Notification
	sent     []string
	failed   map[string]*time.Time
	notSent  string
	released time.Time
}

func (s *fakeStore) Claim(ctx context.Context, now time.Time, limit int) ([]notification.Notification, error) {
	out := s.claim
	s.claim = nil
	return out, nil
}
func (s *fakeStore) Sent(ctx context.Context, id string, at time.Time) error {
	s.sent = append(s.sent, id)
	return ctx.Err()
}
func (s *fakeStore) Failed(ctx context.Context, id, reason string, next *time.Time) error {
	s.failed[id] = next
	return ctx.Err()
}
func (s *fakeStore) MarkNotSent(ctx context.Context, reason string) (int64, error) {
	s.notSent = reason
	return 1, nil
}
func (s *fakeStore) ReleaseStale(ctx context.Context, before time.Time) (int64, error) {
	s.released = before
	return 0, nil
}

// fakeMailer fails the messages listed in errs.
type fakeMailer struct {
	configured bool
	errs       map[string]error
	sent       []string
}

func (m *fakeMailer) Configured() bool { return m.configured }
func (m *fakeMailer) Send(ctx context.Context, msg mailer.Message) error {
	if err := m.errs[msg.MessageID]; err != nil {
		return err
	}
	m.sent = append(m.sent, msg.MessageID)
	return nil
}

func TestRound(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store := &fakeStore{failed: map[string]*time.Time{}, claim: []notification.Notification{
		{ID: "ok", Recipient: "a@example.com", Attempts: 1},
		{ID: "refused", Recipient: "a@example.com", Attempts: 2},
		{ID: "handed", Recipient: "a@example.com", Attempts: 1},
	}}
	mail := &fakeMailer{configured: true, errs: map[string]error{
		"refused": &mailer.Error{Step: "MAIL FROM", Err: errors.New("451 try again")},
		"handed":  &mailer.Error{Step: "end of DATA", Err: errors.New("554 no"), Handed: true},
	}}
	s := New(store, mail, nil)
	s.now = func() time.Time { return now }
	// The outcome is recorded even when the round's context ends during the conversation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(store.sent) != 1 || store.sent[0] != "ok" {
		t.Fatalf("sent %v", store.sent)
	}
	if next := store.failed["refused"]; next == nil || !next.Equal(now.Add(4*time.Second)) {
		t.Fatalf("refused: next attempt %v, want in 4s (second attempt)", next)
	}
	if next, ok := store.failed["handed"]; !ok || next != nil {
		t.Fatalf("handed over, then failed: next attempt %v, want never", next)
	}
	if !store.released.Equal(now.Add(-DefaultStaleAfter)) {
		t.Fatalf("stale claims before %v", store.released)
	}
}

func TestRoundWithoutServer(t *testing.T) {
	store := &fakeStore{failed: map[string]*time.Time{}, claim: []notification.Notification{{ID: "x"}}}
	if err := New(store, &fakeMailer{}, nil).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.notSent != notification.ReasonNoServer || store.claim == nil {
		t.Fatalf("without a server: not_sent %q, claimed %v", store.notSent, store.claim == nil)
	}
}
