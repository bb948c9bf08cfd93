// Package platform describes every process of Sagittarius for the contract
// generator, without connecting to anything: each service's API and bus are
// built the way its main builds them (same constructors, same
// registrations), on a database handle and a bus that never connect. The
// result is what cmd/contracts writes to contracts/ and what the drift test
// compares with the committed files. A service serves the same documents at
// /v1/contracts, generated at start from its live route table and bus; the
// conformance audit checks that both agree.
package platform

import (
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"

	catalogapi "github.com/sagittarius-a/sagittarius/services/catalog/httpapi"
	catalogdb "github.com/sagittarius-a/sagittarius/services/catalog/mysql"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	customersapi "github.com/sagittarius-a/sagittarius/services/customers/httpapi"
	customersdb "github.com/sagittarius-a/sagittarius/services/customers/mysql"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
	inventoryevents "github.com/sagittarius-a/sagittarius/services/inventory/eventapi"
	inventoryapi "github.com/sagittarius-a/sagittarius/services/inventory/httpapi"
	inventorydb "github.com/sagittarius-a/sagittarius/services/inventory/mysql"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	ordersapi "github.com/sagittarius-a/sagittarius/services/orders/httpapi"
	ordersdb "github.com/sagittarius-a/sagittarius/services/orders/mysql"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	paymentsevents "github.com/sagittarius-a/sagittarius/services/payments/eventapi"
	paymentsapi "github.com/sagittarius-a/sagittarius/services/payments/httpapi"
	paymentsdb "github.com/sagittarius-a/sagittarius/services/payments/mysql"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/payments/simulator"
	shippingevents "github.com/sagittarius-a/sagittarius/services/shipping/eventapi"
	shippingapi "github.com/sagittarius-a/sagittarius/services/shipping/httpapi"
	shippingdb "github.com/sagittarius-a/sagittarius/services/shipping/mysql"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// base is the public base URL the descriptions are built with; it appears
// nowhere in the manifests (they use relative server URLs and fixed examples).
var base = hal.MustBase("http://127.0.0.1:8080")

// deps are the never-connecting stand-ins for a service's infrastructure.
type deps struct {
	db     *sqlx.DB
	logger *slog.Logger
}

func newDeps() deps {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", "127.0.0.1:1", "contracts"
	conn, _ := mysql.NewConnector(cfg) // only validates cfg; never dials until used
	return deps{
		db:     sqlx.NewDb(sql.OpenDB(conn), "mysql"),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// bus returns an unconnected bus of service that publishes its events.
func (d deps) bus(service string, published []eventbus.EventInfoer) (*eventbus.Bus, error) {
	b, err := eventbus.New(eventbus.Config{URL: "amqp://contracts:contracts@127.0.0.1:1/", Service: service, Logger: d.logger})
	if err != nil {
		return nil, err
	}
	return b, b.Publishes(published...)
}

// Services returns the description of every process of the platform with
// a contract, in the order of scripts/services.conf.
func Services() ([]contracts.Service, error) {
	d := newDeps()
	builders := []func(deps) (contracts.Service, error){customers, products, orders, inventory, payments, shipping, gateway}
	out := make([]contracts.Service, 0, len(builders))
	for _, build := range builders {
		s, err := build(d)
		if err != nil {
			return nil, fmt.Errorf("platform: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func customers(d deps) (contracts.Service, error) {
	bus, err := d.bus(customerevents.Service, customerevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	render := customersapi.NewRenderer(base)
	store, err := customersdb.New(d.db, render.Customer, nil)
	if err != nil {
		return contracts.Service{}, err
	}
	return customersapi.New(store, render, d.logger).Contract(bus), nil
}

func products(d deps) (contracts.Service, error) {
	bus, err := d.bus(productevents.Service, productevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	render := catalogapi.NewRenderer(base)
	store, err := catalogdb.New(d.db, render.Product, nil)
	if err != nil {
		return contracts.Service{}, err
	}
	return catalogapi.New(store, render, d.logger).Contract(bus), nil
}

func orders(d deps) (contracts.Service, error) {
	bus, err := d.bus(orderevents.Service, orderevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	render := ordersapi.NewRenderer(base)
	store, err := ordersdb.New(d.db, render.Order, nil)
	if err != nil {
		return contracts.Service{}, err
	}
	if err := store.Subscribe(bus); err != nil {
		return contracts.Service{}, err
	}
	return ordersapi.New(store, render, d.logger).Contract(bus), nil
}

func inventory(d deps) (contracts.Service, error) {
	bus, err := d.bus(stockevents.Service, stockevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	resources := inventoryapi.NewResources(base)
	store, err := inventorydb.NewStore(d.db, resources, nil)
	if err != nil {
		return contracts.Service{}, err
	}
	if err := inventoryevents.New(store, d.logger).Register(bus, d.db); err != nil {
		return contracts.Service{}, err
	}
	return inventoryapi.New(store, resources, d.logger).Contract(bus), nil
}

func payments(d deps) (contracts.Service, error) {
	bus, err := d.bus(paymentevents.Service, paymentevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	resources := paymentsapi.NewResources(base)
	store, err := paymentsdb.NewStore(d.db, resources)
	if err != nil {
		return contracts.Service{}, err
	}
	if err := paymentsevents.New(store, simulator.Provider{}, d.logger).Register(bus, d.db); err != nil {
		return contracts.Service{}, err
	}
	return paymentsapi.New(store, resources, d.logger).Contract(bus), nil
}

func shipping(d deps) (contracts.Service, error) {
	bus, err := d.bus(shipmentevents.Service, shipmentevents.All)
	if err != nil {
		return contracts.Service{}, err
	}
	resources := shippingapi.NewResources(base)
	store, err := shippingdb.NewStore(d.db, resources, nil)
	if err != nil {
		return contracts.Service{}, err
	}
	if err := shippingevents.New(store, d.logger).Register(bus, d.db); err != nil {
		return contracts.Service{}, err
	}
	return shippingapi.New(store, resources, d.logger).Contract(bus), nil
}

func gateway(d deps) (contracts.Service, error) {
	u, _ := url.Parse("http://127.0.0.1:1")
	g, err := proxy.New(proxy.Config{Base: base, Logger: d.logger, Upstreams: []proxy.Upstream{{Dir: "orders", Name: orderevents.Service, URL: u}}})
	if err != nil {
		return contracts.Service{}, err
	}
	return g.Contract(), nil
}
