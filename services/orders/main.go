// Command orders runs sales.orders: the orders API (POST/GET/PATCH /v1/orders)
// and the order's side of the saga. It consumes customer and product events
// (read models), stock, payment and shipment events (order status), and
// publishes order_placed, order_confirmed, order_cancelled, order_shipped and
// order_delivered through its outbox. It forgets Idempotency-Keys after 24 h.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is sales.orders' own.
package main

import (
	"context"
	"io"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/orders/eventapi"
	"github.com/sagittarius-a/sagittarius/services/orders/httpapi"
	"github.com/sagittarius-a/sagittarius/services/orders/mysql"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

func main() { service.Main(run) }

// run serves sales.orders until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "orders", Name: orderevents.Service, Addr: "127.0.0.1:8083",
		Migrations: mysql.Migrations, Publishes: orderevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.NewStore(p.DB, render.Order, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		if err := eventapi.New(store, p.Logger).Register(p.Bus, p.DB); err != nil {
			return nil, err
		}
		p.Go("idempotency-keys", func(ctx context.Context) error {
			return store.ForgetIdempotencyKeys(ctx, 24*time.Hour, time.Hour, p.Logger)
		})
		return httpapi.New(store, render, p.Logger), nil
	})
}
