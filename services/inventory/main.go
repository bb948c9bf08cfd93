// Command inventory runs logistics.inventory: stock per product, replenished
// through its HAL API and reserved or released in reaction to orders' events.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is logistics.inventory's own.
package main

import (
	"context"
	"io"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/inventory/eventapi"
	"github.com/sagittarius-a/sagittarius/services/inventory/httpapi"
	"github.com/sagittarius-a/sagittarius/services/inventory/mysql"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
)

func main() { service.Main(run) }

// run serves logistics.inventory until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "inventory", Name: stockevents.Service, Addr: "127.0.0.1:8084",
		Migrations: mysql.Migrations, Publishes: stockevents.All}
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
