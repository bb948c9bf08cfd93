package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

// PaymentMethod is the REST model of a registered payment method. It never
// shows the token.
type PaymentMethod struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	CreatedAt  time.Time `json:"created_at"`
	Links      hal.Links `json:"_links" links:"self,customer"`
}

// methodRequest is the body of POST /v1/payment-methods.
type methodRequest struct {
	Token string `json:"token" required:"true" minLength:"1" maxLength:"255" description:"the payment provider's token for a card or an account (the simulator declines tok_decline); kept by payments, never shown again"`
	// CustomerID is read from staff only: a customer registers methods for themselves.
	CustomerID string `json:"customer_id,omitempty" maxLength:"100" description:"staff only: the customer the method is for; a customer's own token decides for a customer"`
}

// Method renders a payment method. Links: self, customer.
func (rs Renderer) Method(m payment.Method) PaymentMethod {
	return PaymentMethod{ID: m.ID, CustomerID: m.CustomerID, CreatedAt: m.CreatedAt, Links: hal.Links{
		"self":     hal.To(rs.api.Href("payment-methods", m.ID)),
		"customer": hal.To(rs.customers.Href("customers", m.CustomerID)),
	}}
}

func (a *API) addMethod(w http.ResponseWriter, r *http.Request) {
	var req methodRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	customerID := req.CustomerID
	if own, confined := auth.Confined(r.Context()); confined {
		customerID = own // never trusted over the token
	}
	m, err := payment.NewMethod(uuid.NewString(), customerID, req.Token, time.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.AddMethod(r.Context(), m); err != nil {
		a.fail(w, r, err)
		return
	}
	out := a.rs.Method(m)
	w.Header().Set("Location", out.Links.Href("self"))
	hal.Write(w, r, http.StatusCreated, out)
}

func (a *API) getMethod(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 36 {
		a.fail(w, r, errMethodNotFound)
		return
	}
	m, err := a.store.Method(r.Context(), id)
	if errors.Is(err, payment.ErrNotFound) || (err == nil && !auth.Owns(r.Context(), m.CustomerID)) {
		err = errMethodNotFound // another customer's method answers as a missing one
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.rs.Method(m))
}

func (a *API) listMethods(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var customer *string
	if own, confined := auth.Confined(r.Context()); confined {
		if own == "" {
			own = "\x00"
		}
		customer = &own // a customer lists only their own methods
	}
	ms, total, err := a.store.Methods(r.Context(), customer, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]PaymentMethod, len(ms))
	for i, m := range ms {
		out[i] = a.rs.Method(m)
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("payment-methods", a.rs.api.Href("payment-methods"), nil, out, p, total))
}

var errMethodNotFound = errors.New("no such payment method")

// fieldError turns a domain error "/field: message: invalid" into a 422
// problem naming the field.
func fieldError(err error) *problem.Problem {
	msg := strings.TrimSuffix(err.Error(), ": "+payment.ErrInvalid.Error())
	field, text, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(field, "/") {
		field, text = "", msg
	}
	return problem.Validation(problem.FieldError{Field: field, Message: text})
}
