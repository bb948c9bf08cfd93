package httpapi

import (
	"time"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
)

// Renderer renders domain values as REST models with absolute links through the gateway. The same
// models are the entities of the events (stockevents). A Renderer is immutable and safe for
// concurrent use.
type Renderer struct {
	api     hal.Base // <public>/inventory/v1
	catalog hal.Base // <public>/catalog/v1
	orders  hal.Base // <public>/orders/v1
}

// NewRenderer returns the Renderer for the gateway at public (PUBLIC_BASE_URL), under which the
// inventory API is mounted at /inventory, the catalog at /catalog and orders at /orders.
func NewRenderer(public hal.Base) Renderer {
	return Renderer{
		api:     public.Join("inventory", "v1"),
		catalog: public.Join("catalog", "v1"),
		orders:  public.Join("orders", "v1"),
	}
}

// Stock renders a stock item. Links: self, product, replenishments, reservations.
func (rs Renderer) Stock(item inventory.StockItem) stockevents.Stock {
	return stockevents.Stock{
		ProductID:   item.ProductID,
		ProductName: item.ProductName,
		Status:      string(item.Status),
		Available:   item.Available,
		Reserved:    item.Reserved,
		Shipped:     item.Shipped,
		Replenished: item.Replenished,
		Version:     item.Version,
		UpdatedAt:   item.UpdatedAt,
		Links: hal.Links{
			"self":           hal.To(rs.api.Href("stock-items", item.ProductID)),
			"product":        hal.To(rs.catalog.Href("products", item.ProductID)),
			"replenishments": hal.To(rs.api.Href("stock-items", item.ProductID, "replenishments")),
			"reservations":   hal.To(rs.api.Href("reservations") + "?product_id=" + queryEscape(item.ProductID)),
		},
	}
}

// Reservation renders a reservation. Links: self, order, stock-items (a list).
func (rs Renderer) Reservation(r inventory.Reservation) stockevents.Reservation {
	out := stockevents.Reservation{
		OrderID:    r.OrderID,
		Status:     string(r.Status),
		Reason:     r.Reason,
		Lines:      make([]stockevents.Line, 0, len(r.Lines)),
		CreatedAt:  r.CreatedAt,
		ReleasedAt: r.ReleasedAt,
		ShippedAt:  r.ShippedAt,
		Links: hal.Links{
			"self":  hal.To(rs.api.Href("reservations", r.OrderID)),
			"order": hal.To(rs.orders.Href("orders", r.OrderID)),
		},
	}
	items := make([]hal.Link, 0, len(r.Lines))
	for _, l := range r.Lines {
		out.Lines = append(out.Lines, stockevents.Line{
			ProductID: l.ProductID,
			Quantity:  l.Quantity,
			Links: hal.Links{
				"product":    hal.To(rs.catalog.Href("products", l.ProductID)),
				"stock-item": hal.To(rs.api.Href("stock-items", l.ProductID)),
			},
		})
		items = append(items, hal.Link{Href: rs.api.Href("stock-items", l.ProductID)})
	}
	out.Links["stock-items"] = hal.Many(items...)
	for _, s := range r.Shortages {
		out.RejectedLines = append(out.RejectedLines, stockevents.RejectedLine{ProductID: s.ProductID, Requested: s.Requested, Available: s.Available})
	}
	return out
}

// Replenishment is the REST model of /v1/replenishments/{id}. Links: self, stock-item, product.
type Replenishment struct {
	ID        string    `json:"id"`
	ProductID string    `json:"product_id"`
	Quantity  int64     `json:"quantity"`
	CreatedAt time.Time `json:"created_at"`
	Links     hal.Links `json:"_links" links:"self,stock-item,product"`
}

// Replenishment renders a replenishment.
func (rs Renderer) Replenishment(r inventory.Replenishment) Replenishment {
	return Replenishment{
		ID: r.ID, ProductID: r.ProductID, Quantity: r.Quantity, CreatedAt: r.CreatedAt,
		Links: hal.Links{
			"self":       hal.To(rs.api.Href("replenishments", r.ID)),
			"stock-item": hal.To(rs.api.Href("stock-items", r.ProductID)),
			"product":    hal.To(rs.catalog.Href("products", r.ProductID)),
		},
	}
}

// Root is the REST model of /v1: the entry point of the inventory API.
type Root struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,stock-items,stock-item,reservations,reservation,replenishments,find-stock-items,find-reservations,contracts,failed-messages"`
}

// Root renders the entry point.
func (rs Renderer) Root() Root {
	return Root{
		Service: stockevents.Service,
		Links: hal.Links{
			"self":                 hal.To(rs.api.Href()),
			"stock-items":          hal.To(rs.api.Href("stock-items")),
			"stock-item":           hal.One(hal.Link{Href: rs.api.Href("stock-items") + "/{product_id}", Templated: true}),
			"reservations":         hal.To(rs.api.Href("reservations")),
			"reservation":          hal.One(hal.Link{Href: rs.api.Href("reservations") + "/{order_id}", Templated: true}),
			"replenishments":       hal.To(rs.api.Href("replenishments")),
			"find-stock-items":     hal.One(hal.Find(rs.api.Href("stock-items"), "status", "page", "size")),
			"find-reservations":    hal.One(hal.Find(rs.api.Href("reservations"), "status", "product_id", "page", "size")),
			contracts.ContractsRel: hal.To(rs.api.Href("contracts")),
			failedmsg.Rel:          failedmsg.RootLink(rs.api),
		},
	}
}
