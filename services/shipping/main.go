// Command shipping runs logistics.shipments: it schedules a shipment for
// every confirmed order, cancels it when the order is cancelled first, and
// lets clients dispatch and deliver it through its HAL API.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is logistics.shipments' own.
package main

import (
	"context"
	"io"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/shipping/eventapi"
	"github.com/sagittarius-a/sagittarius/services/shipping/httpapi"
	"github.com/sagittarius-a/sagittarius/services/shipping/mysql"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

func main() { service.Main(run) }

// run serves logistics.shipments until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "shipping", Name: shipmentevents.Service, Addr: "127.0.0.1:8086",
		Migrations: mysql.Migrations, Publishes: shipmentevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.NewStore(p.DB, render, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		if err := eventapi.New(store, p.Logger).Register(p.Bus, p.DB); err != nil {
			return nil, err
		}
		return httpapi.New(store, render, p.Logger), nil
	})
}
