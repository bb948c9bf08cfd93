package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/identity/account"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
	"github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

// TestTokenForEveryKindOfAccount runs the command against a real provider
// (on MariaDB) for staff, operator, the demo client and a customer, and
// checks that the last line of its output is a token the platform verifier
// accepts, with the right role.
func TestTokenForEveryKindOfAccount(t *testing.T) {
	ctx := context.Background()
	db := testinfra.NewDatabase(t)
	if err := mysql.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	store, err := mysql.New(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Account, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	secrets := t.TempDir()
	for name, v := range map[string]string{"identity-staff.password": "staff password 1", "identity-operator.password": "operator password 1",
		"identity-demo-client.secret": "demo-secret-0123456789"} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err = idp.Provision(ctx, store, store, idp.Provisioning{
		StaffEmail: "staff@sagittarius.example", StaffPassword: "staff password 1",
		OperatorEmail: "operator@sagittarius.example", OperatorPassword: "operator password 1",
		DemoClientID: "sagittarius-demo", DemoClientSecret: "demo-secret-0123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := idp.New(ctx, idp.Config{PublicURL: srv.URL, Audience: "sagittarius"}, store, store)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	ann, err := account.SignUp(uuid.NewString(), uuid.NewString(), "ann@example.com", "Ann", "ann's long password", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateAccount(ctx, ann); err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(auth.Config{Issuer: p.Issuer(), Audience: "sagittarius"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args  []string
		env   map[string]string
		stdin string
		role  auth.Role
		fails string
	}{
		{args: nil, role: auth.RoleStaff},
		{args: []string{"operator"}, role: auth.RoleOperator},
		{args: []string{"demo"}, role: auth.RoleStaff},
		{args: []string{"ann@example.com"}, env: map[string]string{"SAGITTARIUS_PASSWORD": "ann's long password"}, role: auth.RoleCustomer},
		{args: []string{"ann@example.com"}, stdin: "ann's long password\n", role: auth.RoleCustomer},
		{args: []string{"ann@example.com"}, stdin: "wrong password\n", fails: "wrong e-mail or password"},
		{args: []string{"root"}, fails: "unknown account"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			env := map[string]string{"OIDC_ISSUER": p.Issuer(), "SAGITTARIUS_SECRETS": secrets}
			for k, x := range tc.env {
				env[k] = x
			}
			var out, errOut bytes.Buffer
			err := run(ctx, tc.args, func(k string) string { return env[k] }, strings.NewReader(tc.stdin), &out, &errOut)
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) {
					t.Fatalf("err %v, want %q", err, tc.fails)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			pr, err := v.Verify(ctx, lines[len(lines)-1])
			if err != nil {
				t.Fatalf("last line is not a valid token: %v\n%s", err, out.String())
			}
			if !pr.HasRole(tc.role) || (tc.role == auth.RoleCustomer) != (pr.CustomerID == ann.CustomerID) {
				t.Fatalf("principal %+v", pr)
			}
			if !strings.Contains(errOut.String(), "access token for") {
				t.Fatalf("stderr %q", errOut.String())
			}
		})
	}
}
