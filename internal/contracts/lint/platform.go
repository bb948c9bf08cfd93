package lint

import (
	"fmt"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// Platform cross-checks the services' AsyncAPI manifests: every consumed
// event is published by some service, by the service its type names, with
// a payload schema compatible with what the consumer's manifest expects
// (no field the consumer expects is missing, optional or of another type).
// file names the manifest of a service directory.
func Platform(c *catalog.Catalog, file func(dir string) string) []Finding {
	var out []Finding
	dirs := map[string]string{}
	for _, s := range c.Services {
		dirs[s.Name] = s.Dir
	}
	for _, e := range c.Events {
		if e.Publisher == "" {
			continue
		}
		if owner := e.Type[:max(strings.LastIndex(e.Type, "."), 0)]; owner != e.Publisher {
			out = append(out, Finding{File: file(dirs[e.Publisher]), Where: "components.messages." + e.Type, Rule: "event-owner",
				Message: fmt.Sprintf("%s publishes %s, an event of %s", e.Publisher, e.Type, owner)})
		}
	}
	for _, cs := range c.Consumptions {
		where := "components.messages." + cs.Type
		e, _ := c.Event(cs.Type)
		if e.Publisher == "" {
			out = append(out, Finding{File: file(dirs[cs.Consumer]), Where: where, Rule: "consumed-unpublished",
				Message: fmt.Sprintf("%s consumes %s, which no service publishes", cs.Consumer, cs.Type)})
			continue
		}
		if ck, pk := str(cs.Message["x-entity-key"]), e.EntityKey; ck != pk {
			out = append(out, Finding{File: file(dirs[cs.Consumer]), Where: where, Rule: "consumed-compatible",
				Message: fmt.Sprintf("%s expects the entity under %q, %s publishes it under %q", cs.Consumer, ck, e.Publisher, pk)})
		}
		for _, d := range diffSchemas(cs.Message["payload"], e.Message["payload"], cs.Schemas, e.Schemas, output) {
			out = append(out, Finding{File: file(dirs[cs.Consumer]), Where: where + ".payload", Rule: "consumed-compatible",
				Message: fmt.Sprintf("%s's view of %s does not match what %s publishes: %s", cs.Consumer, cs.Type, e.Publisher, d)})
		}
	}
	return out
}
