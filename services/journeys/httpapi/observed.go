package httpapi

import (
	"sort"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// PlatformEvents lists the event types of every service of
// scripts/services.conf (add a service's <name>events.All here when it joins
// the platform: the contract check refuses a consumed type no service
// publishes). Its own events (journey_stuck, journey_resumed) come back to
// it too and join their journey's timeline; the manifest lists them once, as
// published. It consumes every event whatever its type
// (eventbus.HandleAll); these are the ones its AsyncAPI manifest documents,
// and the ones its journey definitions may name (checked by its tests).
func PlatformEvents() []eventbus.EventInfo {
	var out []eventbus.EventInfo
	for _, all := range [][]eventbus.EventInfoer{customerevents.All, productevents.All, orderevents.All,
		stockevents.All, paymentevents.All, shipmentevents.All} {
		for _, e := range all {
			out = append(out, e.Info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}

// observed is the bus as the manifests see it: besides the types with a
// handler of their own, every platform event is consumed (HandleAll).
type observed struct{ contracts.Events }

func (o observed) Consumed() []eventbus.EventInfo {
	seen := map[string]bool{}
	var out []eventbus.EventInfo
	for _, e := range append(o.Events.Consumed(), PlatformEvents()...) {
		if !seen[e.Type()] {
			seen[e.Type()] = true
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}
