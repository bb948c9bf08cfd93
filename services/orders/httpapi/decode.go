package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
)

// placeRequest is the body of POST /v1/orders.
type placeRequest struct {
	CustomerID      string          `json:"customer_id"`
	Lines           []lineRequest   `json:"lines"`
	PaymentMethodID string          `json:"payment_method_id"`
	ShippingAddress *addressRequest `json:"shipping_address"`
}

type lineRequest struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

type addressRequest struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Country    string `json:"country"`
}

// decodePlace reads and validates the body of POST /v1/orders. Errors are
// *problem.Problem (415, 413, 400, 422 for JSON types and unknown fields) or
// *order.ValidationError (422 for values).
func decodePlace(w http.ResponseWriter, r *http.Request) (order.PlaceInput, error) {
	var req placeRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		return order.PlaceInput{}, err
	}
	customerID := req.CustomerID
	if own, confined := auth.Confined(r.Context()); confined {
		// A customer orders for themselves: the body's customer_id is never
		// trusted over the token (staff may place for any customer).
		customerID = own
	}
	in := order.PlaceInput{
		CustomerID:      customerID,
		PaymentMethodID: req.PaymentMethodID,
		Lines:           make([]order.LineInput, len(req.Lines)),
	}
	for i, l := range req.Lines {
		in.Lines[i] = order.LineInput{ProductID: l.ProductID, Quantity: l.Quantity}
	}
	if a := req.ShippingAddress; a != nil {
		in.ShippingAddress = order.Address{
			Name: a.Name, Line1: a.Line1, Line2: a.Line2, PostalCode: a.PostalCode, City: a.City, Country: a.Country,
		}
	}
	if err := in.Validate(); err != nil {
		return order.PlaceInput{}, err
	}
	return in, nil
}

// patchRequest is the body of PATCH /v1/orders/{id}.
type patchRequest struct {
	Status *string `json:"status" required:"true" enum:"cancelled" description:"cancelled: the only change a client may make"`
}

// decodePatch reads the body of PATCH /v1/orders/{id}: {"status":"cancelled"},
// the only change clients may make (other statuses follow the saga). It
// returns the requested status, or a *problem.Problem (415, 413, 400, 422).
func decodePatch(w http.ResponseWriter, r *http.Request) (order.Status, error) {
	var req patchRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		return "", err
	}
	var f problem.Fields
	switch {
	case req.Status == nil:
		f.Add("/status", `required: "cancelled"`)
	case order.Status(*req.Status) != order.StatusCancelled:
		f.Add("/status", `can only be set to "cancelled"; other statuses follow the order's payment and shipment`)
	}
	if err := f.Err(); err != nil {
		return "", err
	}
	return order.StatusCancelled, nil
}

// parseListQuery reads the query of GET /v1/orders: customer_id, status,
// page and size. Errors are 400 problems naming the parameter.
func parseListQuery(q url.Values) (order.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return order.Filter{}, hal.Page{}, err
	}
	var f problem.Fields
	filter := order.Filter{Limit: page.Size, Offset: page.Offset()}
	if vs, ok := q["customer_id"]; ok {
		if f.Check(len(vs) == 1 && vs[0] != "" && len(vs[0]) <= 191, "customer_id", "must be given once, not empty") {
			filter.CustomerID = vs[0]
		}
	}
	if vs, ok := q["status"]; ok {
		if f.Check(len(vs) == 1 && order.Status(vs[0]).Valid(), "status", "must be given once, one of pending, confirmed, shipped, delivered, cancelled") {
			filter.Status = order.Status(vs[0])
		}
	}
	if len(f) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = f
		return order.Filter{}, hal.Page{}, p
	}
	return filter, page, nil
}

// maxKeyLen bounds an Idempotency-Key (it is a database key).
const maxKeyLen = 191

// idempotencyKey returns the request's Idempotency-Key header ("" when
// absent). The draft standard makes it a structured-field string; a quoted
// or bare value of 1 to 191 visible ASCII characters is accepted, anything
// else (or the header given twice) is a 400 problem.
func idempotencyKey(h http.Header) (string, error) {
	vs := h.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", nil
	}
	bad := func() error {
		p := problem.BadRequest("Idempotency-Key must be given once, 1 to 191 visible ASCII characters")
		p.Errors = []problem.FieldError{{Field: "Idempotency-Key", Message: "invalid header"}}
		return p
	}
	if len(vs) != 1 {
		return "", bad()
	}
	k := strings.TrimSpace(vs[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxKeyLen {
		return "", bad()
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' {
			return "", bad()
		}
	}
	return k, nil
}
