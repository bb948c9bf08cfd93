package eventapi_test

import (
	"testing"

	"github.com/sagittarius-a/sagittarius/services/journeys/eventapi"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
)

// The journey definitions name only event types the platform's services
// publish: a typo in journeys.yaml, or an event renamed by its service,
// fails here rather than leaving a step that can never close.
func TestDefinitionsNameOnlyPlatformEvents(t *testing.T) {
	c, err := journey.Default()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, e := range eventapi.PlatformEvents() {
		known[e.Info().Type()] = true
	}
	types := c.EventTypes()
	if len(types) < 10 {
		t.Fatalf("the definitions name only %d event types", len(types))
	}
	for _, typ := range types {
		if !known[typ] {
			t.Errorf("journeys.yaml names %s, which no service of the platform publishes", typ)
		}
	}
	// And the entities it reads ids from are the entity keys of those events.
	keys := map[string]bool{}
	for _, e := range eventapi.PlatformEvents() {
		keys[e.Info().EntityKey] = true
	}
	for key := range c.Entities {
		if !keys[key] {
			t.Errorf("journeys.yaml reads ids from entity %q, which no platform event carries", key)
		}
	}
}
