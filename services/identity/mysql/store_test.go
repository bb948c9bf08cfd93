package mysql_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/identity/account"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
	"github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

func TestAccountStore(t *testing.T) {
	ctx := context.Background()
	db := testinfra.NewDatabase(t)
	if err := mysql.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	if err := mysql.Migrate(ctx, db, nil); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	notified := 0
	s, err := mysql.New(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Account, func() { notified++ })
	if err != nil {
		t.Fatal(err)
	}
	ann, err := account.SignUp(uuid.NewString(), uuid.NewString(), "ann@example.com", "Ann", "ann's long password", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, ann); err != nil {
		t.Fatal(err)
	}
	dup, _ := account.SignUp(uuid.NewString(), uuid.NewString(), "ANN@example.com ", "Ann 2", "another long password", time.Now())
	if err := s.CreateAccount(ctx, dup); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("same email: %v", err)
	}
	staff, _ := account.New(uuid.NewString(), "", "staff@example.com", "Staff", "staff long password", account.RoleStaff, time.Now())
	if err := s.CreateAccount(ctx, staff); err != nil {
		t.Fatal(err)
	}
	got, err := s.AccountByEmail(ctx, " Ann@Example.com")
	if err != nil || got.ID != ann.ID || got.CustomerID != ann.CustomerID || got.PasswordHash != ann.PasswordHash || !got.CreatedAt.Equal(ann.CreatedAt) {
		t.Fatalf("AccountByEmail = %+v, %v", got, err)
	}
	if _, err := s.Account(ctx, uuid.NewString()); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	list, total, err := s.ListAccounts(ctx, account.Filter{Role: account.RoleCustomer, Limit: 10})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != ann.ID {
		t.Fatalf("customers: %v %d %v", list, total, err)
	}
	up, err := s.UpdateAccount(ctx, ann.ID, func(a *account.Account) (bool, error) { return a.SetPassword("a new long password", time.Now()) })
	if err != nil || up.Version != 2 || up.Authenticate("a new long password") != nil {
		t.Fatalf("UpdateAccount = %+v, %v", up, err)
	}
	if got, _ := s.Account(ctx, ann.ID); got.Authenticate("ann's long password") == nil || got.Authenticate("a new long password") != nil {
		t.Fatal("the new password was not stored")
	}

	// Two account_registered in the outbox, none with a secret; the relay was woken twice.
	var bodies []string
	if err := db.Select(&bodies, `SELECT body FROM eventbus_outbox WHERE type = 'iam.accounts.account_registered' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || notified != 2 {
		t.Fatalf("%d events, %d notifications", len(bodies), notified)
	}
	for _, b := range bodies {
		if strings.Contains(b, "argon2") || strings.Contains(b, "password") {
			t.Fatalf("event with a secret: %s", b)
		}
	}
	if !strings.Contains(bodies[0], `"customer_id":"`+ann.CustomerID+`"`) || !strings.Contains(bodies[0], `"customer":{"href":"http://gw.test/customers/v1/customers/`+ann.CustomerID) {
		t.Fatalf("customer event %s", bodies[0])
	}
}

func TestRefreshTokenRotationIsAtomic(t *testing.T) {
	ctx := context.Background()
	db := testinfra.NewDatabase(t)
	if err := mysql.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	s, _ := mysql.New(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Account, nil)
	now := time.Now().UTC()
	tok := func(h string) idp.RefreshToken {
		return idp.RefreshToken{ID: uuid.NewString(), Hash: []byte(strings.Repeat(h, 32)), ClientID: "c", Subject: "s",
			Scopes: []string{"openid"}, AuthTime: now, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	}
	if err := s.CreateRefreshToken(ctx, tok("a")); err != nil {
		t.Fatal(err)
	}
	// Ten concurrent rotations of one token: exactly one wins.
	errs := make(chan error, 10)
	for i := range 10 {
		go func() { errs <- s.RotateRefreshToken(ctx, []byte(strings.Repeat("a", 32)), tok(string(rune('b'+i)))) }()
	}
	wins := 0
	for range 10 {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, idp.ErrNotFound):
			t.Fatalf("rotation: %v", err)
		}
	}
	var n int
	if err := db.Get(&n, `SELECT COUNT(*) FROM oauth_refresh_tokens`); err != nil || wins != 1 || n != 1 {
		t.Fatalf("%d rotations won, %d tokens stored (%v)", wins, n, err)
	}
}
