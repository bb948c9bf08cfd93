// Command catalog runs catalog.products: the catalog API (add, read, list,
// change price and details, retire under /v1/products). It consumes no
// events; it publishes product_added, product_updated and product_retired
// through its outbox.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is catalog.products' own.
package main

import (
	"context"
	"io"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/catalog/httpapi"
	"github.com/sagittarius-a/sagittarius/services/catalog/mysql"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

func main() { service.Main(run) }

// run serves catalog.products until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "catalog", Name: productevents.Service, Addr: "127.0.0.1:8082",
		Migrations: mysql.Migrations, Publishes: productevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.NewStore(p.DB, render.Product, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		return httpapi.New(store, render, p.Logger), nil
	})
}
