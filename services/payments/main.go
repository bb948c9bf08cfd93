// Command payments runs finance.payments: it charges orders whose stock is
// reserved through a simulated payment provider, refunds them when they are
// cancelled after capture, and serves the payments through its HAL API.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). This file is what is finance.payments' own, and
// FAULT_INJECT, for fault tests only (faults.go).
package main

import (
	"context"
	"io"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/payments/eventapi"
	"github.com/sagittarius-a/sagittarius/services/payments/httpapi"
	"github.com/sagittarius-a/sagittarius/services/payments/mysql"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/payments/simulator"
)

func main() { service.Main(run) }

// run serves finance.payments until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	faults, err := parseFaults(getenv("FAULT_INJECT"))
	if err != nil {
		return err
	}
	spec := service.Spec{Dir: "payments", Name: paymentevents.Service, Addr: "127.0.0.1:8085",
		Migrations: mysql.Migrations, Publishes: paymentevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.NewStore(p.DB, render)
		if err != nil {
			return nil, err
		}
		var provider payment.Provider = simulator.Provider{}
		if !faults.none() {
			p.Logger.Warn("FAULT_INJECT is set: the payment provider fails on purpose (fault tests only)", "faults", getenv("FAULT_INJECT"))
			provider = newFaultyProvider(provider, faults)
		}
		if err := eventapi.New(store, provider, p.Logger).Register(p.Bus, p.DB); err != nil {
			return nil, err
		}
		return httpapi.New(store, render, p.Logger), nil
	})
}
