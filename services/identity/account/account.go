// Package account is the domain of iam.accounts: the accounts people sign in
// with, their roles, the rules for signing up, and password hashing. It
// imports no transport or database package.
package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sagittarius-a/sagittarius/internal/validation"
)

// Role is what an account may do on the platform. The access tokens of the
// account carry it in their roles claim.
type Role string

// The roles.
const (
	RoleCustomer Role = "customer" // their own data only; the account has a customer id
	RoleStaff    Role = "staff"    // catalog, stock, shipments, all orders and customers
	RoleOperator Role = "operator" // the operations endpoints
)

// Valid reports whether r is a role an account may have.
func (r Role) Valid() bool { return r == RoleCustomer || r == RoleStaff || r == RoleOperator }

// Status of an account. Only an active account may sign in.
type Status string

// Statuses.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Errors of the use cases. The HTTP layer maps them in one place.
var (
	// ErrNotFound: no account with this id or email.
	ErrNotFound = errors.New("account not found")
	// ErrEmailTaken: another account already signs in with this email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrBadCredentials: unknown email, wrong password or disabled account;
	// deliberately one error, so that a caller cannot tell which.
	ErrBadCredentials = errors.New("wrong email or password")
)

// FieldError names one invalid field (by its JSON pointer without the
// leading slash) and why.
type FieldError = validation.FieldError

// ValidationError lists the invalid fields of a request.
type ValidationError = validation.Error

// Account is a person who signs in. PasswordHash is never shown, logged or
// published: the REST model and the events leave it out.
type Account struct {
	ID    string
	Email string // normalised: trimmed, lower case; the sign-in name
	Name  string
	Role  Role
	// CustomerID is the id of the customer (in crm.customers) a customer
	// account acts for; "" for staff and operators. It is assigned at sign-up
	// and never changes.
	CustomerID   string
	PasswordHash string // PHC string, see HashPassword
	Status       Status
	Version      int64 // 1 at creation, +1 per change
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Limits of the fields.
const (
	MaxEmailLen       = 254
	MaxNameLen        = 200
	MinPasswordLen    = 8    // characters (NIST SP 800-63B)
	MaxPasswordLen    = 1024 // bytes: a bound on the work a sign-in may ask for
	MaxPasswordRunes  = 256
	passwordFieldName = "password"
)

// NormalizeEmail trims and lower-cases email.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// checkPassword applies the password policy: 8 to 256 characters of valid
// UTF-8 (at most 1024 bytes), not only spaces. Nothing else: length beats
// composition rules.
func checkPassword(f *validation.Fields, pw string) {
	switch {
	case !utf8.ValidString(pw):
		f.Add(passwordFieldName, "must be valid UTF-8")
	case len(pw) > MaxPasswordLen || utf8.RuneCountInString(pw) > MaxPasswordRunes:
		f.Add(passwordFieldName, fmt.Sprintf("must be at most %d characters", MaxPasswordRunes))
	case utf8.RuneCountInString(pw) < MinPasswordLen || strings.TrimSpace(pw) == "":
		f.Add(passwordFieldName, fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	}
}

// New returns a new active account with version 1, its password hashed, or
// a *ValidationError naming every invalid field. customerID must be set for
// RoleCustomer and empty otherwise. email is normalised, name trimmed.
func New(id, customerID, email, name, password string, role Role, now time.Time) (Account, error) {
	a := Account{
		ID: id, Email: NormalizeEmail(email), Name: strings.TrimSpace(name), Role: role, CustomerID: customerID,
		Status: StatusActive, Version: 1, CreatedAt: now.UTC().Truncate(time.Microsecond), UpdatedAt: now.UTC().Truncate(time.Microsecond),
	}
	f := validation.Fields{Subject: "account"}
	validation.Email(&f, "email", a.Email, MaxEmailLen)
	validation.Name(&f, "name", a.Name, MaxNameLen)
	checkPassword(&f, password)
	if !role.Valid() {
		f.Add("role", "must be customer, staff or operator")
	}
	if (role == RoleCustomer) != (customerID != "") {
		return Account{}, fmt.Errorf("account: a customer id goes with role customer only (role %s, customer id %q)", role, customerID)
	}
	if err := f.Err(); err != nil {
		return Account{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Account{}, err
	}
	a.PasswordHash = hash
	return a, nil
}

// SignUp returns a new customer account: New with RoleCustomer.
func SignUp(id, customerID, email, name, password string, now time.Time) (Account, error) {
	return New(id, customerID, email, name, password, RoleCustomer, now)
}

// Authenticate returns nil when password is a's password and a may sign in,
// else ErrBadCredentials.
func (a Account) Authenticate(password string) error {
	if a.Status != StatusActive || !CheckPassword(a.PasswordHash, password) {
		return ErrBadCredentials
	}
	return nil
}

// SetPassword replaces a's password (policy checked) and reports whether it
// changed anything; Version grows when it did.
func (a *Account) SetPassword(password string, now time.Time) (bool, error) {
	f := validation.Fields{Subject: "account"}
	checkPassword(&f, password)
	if err := f.Err(); err != nil {
		return false, err
	}
	if CheckPassword(a.PasswordHash, password) && !NeedsRehash(a.PasswordHash) {
		return false, nil
	}
	hash, err := HashPassword(password)
	if err != nil {
		return false, err
	}
	a.PasswordHash = hash
	a.Version++
	a.UpdatedAt = now.UTC()
	return true, nil
}

// Filter selects accounts to list. Zero fields do not filter.
type Filter struct {
	Email  string // exact, normalised
	Role   Role
	Limit  int
	Offset int
}

// Store keeps accounts. Each method is one transaction; the events a change
// causes are written to the outbox in that same transaction. Implementations
// are safe for concurrent use.
type Store interface {
	// CreateAccount stores a new account and enqueues account_registered,
	// or returns ErrEmailTaken.
	CreateAccount(ctx context.Context, a Account) error
	// Account returns the account with id, or ErrNotFound.
	Account(ctx context.Context, id string) (Account, error)
	// AccountByEmail returns the account signing in with email (normalised),
	// or ErrNotFound.
	AccountByEmail(ctx context.Context, email string) (Account, error)
	// UpdateAccount loads the account, calls change (which reports whether
	// it changed anything, or aborts with an error) and stores the result.
	UpdateAccount(ctx context.Context, id string, change func(a *Account) (bool, error)) (Account, error)
	// ListAccounts returns one page of accounts matching f, oldest first,
	// and the number of all matching accounts.
	ListAccounts(ctx context.Context, f Filter) ([]Account, int, error)
}
