// Command customers runs crm.customers: the customers API (register, read,
// update, list, remove under /v1/customers). It consumes account_registered
// (a customer who signed up with the identity service gets a customer record
// under the account's customer_id: package eventapi); it publishes
// customer_registered, customer_updated and customer_removed through its
// outbox.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is crm.customers' own.
package main

import (
	"context"
	"io"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/customers/eventapi"
	"github.com/sagittarius-a/sagittarius/services/customers/httpapi"
	"github.com/sagittarius-a/sagittarius/services/customers/mysql"
)

func main() { service.Main(run) }

// run serves crm.customers until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "customers", Name: customerevents.Service, Addr: "127.0.0.1:8081",
		Migrations: mysql.Migrations, Publishes: customerevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.NewStore(p.DB, render.Customer, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		if err := eventapi.New(store, p.Logger).Register(p.Bus, p.DB); err != nil {
			return nil, err
		}
		return httpapi.New(store, render, p.Logger), nil
	})
}
