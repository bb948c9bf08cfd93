package eventbus

import (
	"context"
	"testing"
)

// TestActorHeaders: an event records the actor of its context; a context
// without one adds no actor header.
func TestActorHeaders(t *testing.T) {
	h := outgoingHeaders(WithActor(context.Background(), "acct-1", "customer"), "id-1")
	if h[HeaderActorSubject] != "acct-1" || h[HeaderActorRole] != "customer" {
		t.Fatalf("headers %v", h)
	}
	h = outgoingHeaders(context.Background(), "id-2")
	if _, ok := h[HeaderActorSubject]; ok {
		t.Fatalf("headers without an actor: %v", h)
	}
	if sub, role := Actor(WithActor(context.Background(), "", "staff")); sub != "" || role != "" {
		t.Fatalf("an empty subject is no actor: %q %q", sub, role)
	}
}
