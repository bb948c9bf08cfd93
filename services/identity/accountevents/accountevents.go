// Package accountevents defines the integration events that iam.accounts
// publishes. It is the only package of the identity service that other
// services may import.
//
// iam.accounts is the platform's embedded identity provider: "iam" (identity
// and access management) is the domain, "accounts" the subdomain, the thing
// it keeps. Its events carry the account in the same shape as the REST model
// of /v1/accounts/{id}, HAL links included, and never a secret: no password,
// no password hash, no token.
//
// Events (entity key "account"):
//
//	iam.accounts.account_registered  a new account: a customer who signed up (role
//	                                 "customer", with the customer_id crm.customers
//	                                 should create the customer under), or a staff or
//	                                 operator account provisioned at start
//
// Consumers keep the highest Version they have seen per account and ignore
// older events: events may arrive late, twice or out of order.
package accountevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "iam.accounts"

// Roles an account may have.
const (
	RoleCustomer = "customer"
	RoleStaff    = "staff"
	RoleOperator = "operator"
)

// Account is a person who signs in: the REST model of /v1/accounts/{id}.
//
// Links: self; customer (the customer record in crm.customers) for a customer.
type Account struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	// Role is RoleCustomer, RoleStaff or RoleOperator.
	Role string `json:"role" enum:"customer,staff,operator"`
	// CustomerID is the customer a customer account acts for (its tokens
	// carry it as customer_id); absent for staff and operators.
	CustomerID string `json:"customer_id,omitempty"`
	// Status is "active" (may sign in) or "disabled".
	Status string `json:"status" enum:"active,disabled"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Links     hal.Links `json:"_links"`
}

// The events of iam.accounts.
var (
	AccountRegistered = eventbus.MustEventType[Account](Service, "account_registered", "account")
)

// All lists every event type of iam.accounts, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{AccountRegistered}
