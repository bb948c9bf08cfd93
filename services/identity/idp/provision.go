package idp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/services/identity/account"
)

// CLIClientID is the public client that command-line tools (scripts/token)
// and native apps use: authorization code with PKCE and refresh tokens,
// redirecting to a loopback address on any port (RFC 8252).
const CLIClientID = "sagittarius-cli"

// Provisioning is what the service makes sure exists at start. Empty
// passwords or secrets skip that account or client.
type Provisioning struct {
	StaffEmail, StaffPassword       string
	OperatorEmail, OperatorPassword string
	// DemoClientID gets the client-credentials grant, role staff and
	// DemoClientSecret.
	DemoClientID, DemoClientSecret string
}

// AccountWriter is what provisioning needs of the accounts.
type AccountWriter interface {
	Accounts
	CreateAccount(ctx context.Context, a account.Account) error
	UpdateAccount(ctx context.Context, id string, change func(a *account.Account) (bool, error)) (account.Account, error)
}

// Provision creates or updates, idempotently: the CLI client; the staff and
// operator accounts (created with account_registered; later starts only
// replace a changed password); and the demo client (its secret replaced
// every start). An existing account of the e-mail with another role is an
// error: provisioning never changes who someone is.
func Provision(ctx context.Context, store Store, accounts AccountWriter, p Provisioning) error {
	now := time.Now().UTC()
	err := store.SaveClient(ctx, Client{
		ID: CLIClientID, Name: "Sagittarius command-line tools",
		RedirectURIs: []string{"http://127.0.0.1/callback", "http://localhost/callback"},
		GrantTypes:   []string{GrantAuthorizationCode, GrantRefreshToken},
		CreatedAt:    now, UpdatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("provision %s: %w", CLIClientID, err)
	}
	for _, a := range []struct {
		email, password string
		role            account.Role
		name            string
	}{
		{p.StaffEmail, p.StaffPassword, account.RoleStaff, "Staff"},
		{p.OperatorEmail, p.OperatorPassword, account.RoleOperator, "Operator"},
	} {
		if a.email == "" || a.password == "" {
			continue
		}
		if err := provisionAccount(ctx, accounts, a.email, a.name, a.password, a.role, now); err != nil {
			return fmt.Errorf("provision %s account %s: %w", a.role, a.email, err)
		}
	}
	if p.DemoClientID != "" && p.DemoClientSecret != "" {
		if len(p.DemoClientSecret) < 16 {
			return errors.New("provision demo client: the secret must have at least 16 characters")
		}
		hash, err := account.HashPassword(p.DemoClientSecret)
		if err != nil {
			return err
		}
		err = store.SaveClient(ctx, Client{
			ID: p.DemoClientID, Name: "Sagittarius demo (staff tool)", SecretHash: hash,
			GrantTypes: []string{GrantClientCredentials}, Roles: []string{string(account.RoleStaff)},
			CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return fmt.Errorf("provision client %s: %w", p.DemoClientID, err)
		}
	}
	return nil
}

func provisionAccount(ctx context.Context, accounts AccountWriter, email, name, password string, role account.Role, now time.Time) error {
	existing, err := accounts.AccountByEmail(ctx, email)
	if errors.Is(err, account.ErrNotFound) {
		a, err := account.New(uuid.NewString(), "", email, name, password, role, now)
		if err != nil {
			return err
		}
		err = accounts.CreateAccount(ctx, a)
		if !errors.Is(err, account.ErrEmailTaken) { // another instance provisioning at once: update below
			return err
		}
		existing, err = accounts.AccountByEmail(ctx, email)
	}
	if err != nil {
		return err
	}
	if existing.Role != role {
		return fmt.Errorf("the account exists with role %s", existing.Role)
	}
	_, err = accounts.UpdateAccount(ctx, existing.ID, func(a *account.Account) (bool, error) {
		return a.SetPassword(password, now)
	})
	return err
}
