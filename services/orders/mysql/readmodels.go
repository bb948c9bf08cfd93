package mysql

import (
	"context"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
)

// subscribeReadModels registers the handlers feeding the customers and
// products read models that PlaceOrder checks orders against. Each keeps the
// highest version seen per customer or product; removal and retirement are
// final.
func (s *Store) subscribeReadModels(b *eventbus.Bus) error {
	onCustomer := func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[customerevents.Customer]) error {
		c := ev.Entity
		return saveCustomer(ctx, tx, customerState{
			ID:      c.ID,
			Active:  c.Status == customerevents.StatusActive,
			Removed: ev.Type == customerevents.CustomerRemoved.Type() || c.Status == customerevents.StatusRemoved,
			Version: c.Version,
			FiredAt: ev.FiredAt,
		})
	}
	onProduct := func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[productevents.Product]) error {
		p := ev.Entity
		st := productState{
			ID:      p.ID,
			Name:    p.Name,
			Active:  p.Status == productevents.StatusActive,
			Retired: ev.Type == productevents.ProductRetired.Type() || p.Status == productevents.StatusRetired,
			Version: p.Version,
			FiredAt: ev.FiredAt,
		}
		if p.Price.Currency != "" && p.Price.Amount > 0 {
			st.Price = &order.Money{Amount: p.Price.Amount, Currency: p.Price.Currency}
		}
		return saveProduct(ctx, tx, st)
	}
	var errs []error
	for _, et := range []eventbus.EventType[customerevents.Customer]{
		customerevents.CustomerRegistered, customerevents.CustomerUpdated, customerevents.CustomerRemoved,
	} {
		errs = append(errs, eventbus.HandleTx(b, s.db, et, onCustomer))
	}
	for _, et := range []eventbus.EventType[productevents.Product]{
		productevents.ProductAdded, productevents.ProductUpdated, productevents.ProductRetired,
	} {
		errs = append(errs, eventbus.HandleTx(b, s.db, et, onProduct))
	}
	return errors.Join(errs...)
}
