package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
)

// direct GETs url without a token, with header, bypassing httpClient.
func direct(t *testing.T, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// ordersOf counts the orders of a customer, as staff.
func ordersOf(t *testing.T, c *Cluster, customerID string) int {
	t.Helper()
	var col struct {
		Total int `json:"total"`
	}
	get(t, c.Gateway+"/orders/v1/orders?size=1&customer_id="+customerID, &col)
	return col.Total
}

// testAccess checks identity and access on the running platform: anonymous
// requests to customer, order, payment and shipment resources get 401 at the
// gateway and at each service's own port (a forged identity header does not
// help), catalog browsing stays open, bad tokens are refused, a customer's
// token cannot do staff work, and a customer who signs up gets a customer
// record by choreography (account_registered).
func testAccess(t *testing.T, c *Cluster) {
	none := map[string]string{"Authorization": ""}
	problem401 := func(what string, r response) {
		t.Helper()
		if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="sagittarius"`) ||
			r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q %q %s", what, r.Status, r.Header.Get("WWW-Authenticate"), r.Header.Get("Content-Type"), r.Body)
		}
	}
	for _, p := range []struct{ dir, path string }{
		{"customers", "/v1/customers"}, {"orders", "/v1/orders"}, {"payments", "/v1/payments"}, {"shipping", "/v1/shipments"},
		{"identity", "/v1/accounts"},
	} {
		problem401("anonymous GET /"+p.dir+p.path, call(t, "GET", c.Gateway+"/"+p.dir+p.path, nil, none))
		// Straight to the service's port (not through the contract-checking
		// client: these paths are not the gateway's).
		own := "http://127.0.0.1:" + strconv.Itoa(c.p.Service(p.dir).Port) + p.path
		problem401("anonymous GET "+own, direct(t, own, nil))
		forged := map[string]string{"X-User-Id": "staff-1", "X-Roles": "staff", "X-Customer-Id": "c1",
			"X-Forwarded-User": "staff@sagittarius.example", "X-Auth-Request-Email": "staff@sagittarius.example"}
		problem401("forged identity headers at "+own, direct(t, own, forged))
	}
	if r := call(t, "GET", c.Gateway+"/catalog/v1/products", nil, none); r.Status != http.StatusOK {
		t.Errorf("anonymous catalog browsing: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", c.Gateway+"/inventory/v1/stock-items", nil, none); r.Status != http.StatusOK {
		t.Errorf("anonymous stock browsing: %d %s", r.Status, r.Body)
	}

	// Bad tokens: alg none, tampered payload, garbage.
	staff, err := c.p.StaffToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(staff, ".")
	algNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"staff"`, `"operator"`, 1))) + "." + parts[2]
	for name, tok := range map[string]string{"alg none": algNone, "tampered payload": tampered, "garbage": "not-a-token"} {
		r := call(t, "GET", c.Gateway+"/orders/v1/orders", nil, map[string]string{"Authorization": "Bearer " + tok})
		problem401(name, r)
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: challenge %q", name, r.Header.Get("WWW-Authenticate"))
		}
	}

	// A token of another issuer's key, naming this platform's issuer and
	// audience, valid in time: refused, and nothing is created.
	foreign := authtest.NewIssuer(t)
	claims := foreign.Claims("intruder", "staff")
	claims["iss"] = c.p.Issuer()
	forgedTok := foreign.Sign(claims)
	victim := newCustomer(t, c)
	product := newProduct(t, c, 500, 5)
	for _, hdr := range []map[string]string{none, {"Authorization": "Bearer " + forgedTok}} {
		r := call(t, "POST", c.Gateway+"/orders/v1/orders", orderBody(victim.ID, "tok_visa", line(product.ID, 1)), hdr)
		problem401("POST an order with "+hdr["Authorization"], r)
	}
	if n := ordersOf(t, c, victim.ID); n != 0 {
		t.Errorf("refused requests placed %d orders", n)
	}

	// The provisioned operator signs in through the sign-in form; an
	// operator's token is not staff's: the catalog stays closed to it.
	op, err := c.p.OperatorToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", c.Gateway+"/customers/v1/customers", nil, map[string]string{"Authorization": "Bearer " + op}); r.Status != http.StatusForbidden {
		t.Errorf("an operator lists customers: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", c.Gateway+"/identity/v1/accounts?role=operator", nil, map[string]string{"Authorization": "Bearer " + op}); r.Status != http.StatusOK {
		t.Errorf("an operator lists accounts: %d %s", r.Status, r.Body)
	}

	// A customer signs up: the customer record follows; their token cannot do staff work.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	email := "access-" + randomID() + "@example.com"
	cust, err := c.p.SignUpCustomer(ctx, email, "Access Tester", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the customer record of the new account", func() (bool, string) {
		r := call(t, "GET", c.Gateway+"/customers/v1/customers/"+cust.CustomerID, nil, nil)
		return r.Status == http.StatusOK && strings.Contains(string(r.Body), email), strconv.Itoa(r.Status) + " " + string(r.Body)
	})
	// A burst of wrong passwords is throttled (429), then refused even with
	// the right one until the window passes.
	var throttled bool
	for range 12 {
		if _, err := c.p.AuthClient().SignIn(ctx, platform.CLIClientID, email, "not the password"); errors.Is(err, authclient.ErrThrottled) {
			throttled = true
			break
		} else if !errors.Is(err, authclient.ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if !throttled {
		t.Error("12 wrong passwords in a row were not throttled")
	}
	r := call(t, "POST", c.Gateway+"/catalog/v1/products", map[string]any{"sku": "x-" + randomID(), "name": "X",
		"price": map[string]any{"amount": 100, "currency": "EUR"}}, map[string]string{"Authorization": "Bearer " + cust.Token})
	if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("a customer adds a product: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
	}
}

// testRealKeyWrongClaims signs tokens with the platform's own signing key
// (read from the identity database and unsealed with the key-encryption
// secret, as only someone holding both could) whose claims are wrong:
// expired, not yet valid, for another audience, from another issuer. Each is
// refused with 401 invalid_token at the gateway and at the service's own
// port, while the same key with right claims is accepted, so the claims are
// what is refused.
func testRealKeyWrongClaims(t *testing.T, c *Cluster) {
	db, err := c.p.ServiceDB("identity")
	if err != nil {
		t.Fatal(err)
	}
	var row struct {
		ID  string `db:"id"`
		DER []byte `db:"private_der"`
	}
	if err := db.Get(&row, `SELECT id, private_der FROM oauth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	secret, err := c.p.Secret("identity-key-encryption.secret")
	if err != nil {
		t.Fatal(err)
	}
	key, err := idp.OpenSigningKey(secret, row.ID, row.DER)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(edit func(jwt.MapClaims)) string {
		claims := jwt.MapClaims{"iss": c.p.Issuer(), "aud": []string{"sagittarius"}, "sub": "attacker", "client_id": "attacker",
			"roles": []string{"staff"}, "exp": now.Add(10 * time.Minute).Unix(), "iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix()}
		edit(claims)
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = row.ID
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	own := "http://127.0.0.1:" + strconv.Itoa(c.p.Service("orders").Port) + "/v1/orders"
	get := func(url, tok string) response {
		return direct(t, url, map[string]string{"Authorization": "Bearer " + tok})
	}
	good := sign(func(jwt.MapClaims) {})
	for _, u := range []string{c.Gateway + "/orders/v1/orders", own} {
		if r := get(u, good); r.Status != http.StatusOK {
			t.Fatalf("the real key with right claims at %s: %d %s", u, r.Status, r.Body)
		}
	}
	for name, edit := range map[string]func(jwt.MapClaims){
		"expired": func(c jwt.MapClaims) {
			c["exp"] = now.Add(-10 * time.Minute).Unix()
			c["iat"] = now.Add(-20 * time.Minute).Unix()
		},
		"not yet valid":    func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() },
		"another audience": func(c jwt.MapClaims) { c["aud"] = []string{"another-api"} },
		"another issuer":   func(c jwt.MapClaims) { c["iss"] = "https://issuer.example/oauth" },
		"no expiry":        func(c jwt.MapClaims) { delete(c, "exp") },
	} {
		tok := sign(edit)
		for _, u := range []string{c.Gateway + "/orders/v1/orders", own} {
			r := get(u, tok)
			if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
				r.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s token at %s: %d %q %s", name, u, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
			}
		}
	}
}
