// Command token prints an access token for a Sagittarius account, obtained
// the way a real client obtains it: through the OpenID provider's endpoints
// (scripts/token builds and runs it).
//
//	token [flags] [ACCOUNT]
//
// ACCOUNT is, default staff:
//
//	staff, operator   the provisioned person accounts: authorization code with PKCE
//	                  through the sign-in form, as the public client sagittarius-cli;
//	                  password from <secrets>/identity-<ACCOUNT>.password
//	demo              the provisioned machine client (role staff): client credentials,
//	                  secret from <secrets>/identity-demo-client.secret
//	an e-mail         a customer who signed up: authorization code with PKCE; password
//	                  from SAGITTARIUS_PASSWORD, else one line read from standard input
//
// The access token is the last line of standard output; what it is (subject,
// role, expiry) goes to standard error. Exit status 1 on any failure, with
// the provider's error.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("token", flag.ContinueOnError)
	fl.SetOutput(stderr)
	def := func(v, d string) string {
		if v != "" {
			return v
		}
		return d
	}
	issuer := fl.String("issuer", def(getenv("OIDC_ISSUER"), "http://127.0.0.1:"+def(getenv("GATEWAY_PORT"), "8080")+"/identity/oauth"),
		"the OpenID provider (OIDC_ISSUER)")
	secrets := fl.String("secrets", def(getenv("SAGITTARIUS_SECRETS"), filepath.Join(def(getenv("SAGITTARIUS_DATA"), ".data"), "secrets")),
		"directory of the provisioned secrets (SAGITTARIUS_SECRETS)")
	cliClient := fl.String("client", "sagittarius-cli", "public client for sign-ins")
	demoClient := fl.String("demo-client", def(getenv("IDENTITY_DEMO_CLIENT_ID"), "sagittarius-demo"), "machine client of ACCOUNT demo")
	timeout := fl.Duration("timeout", 30*time.Second, "give up after")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 1 {
		return errors.New("usage: token [flags] [ACCOUNT]")
	}
	acct := "staff"
	if fl.NArg() == 1 {
		acct = fl.Arg(0)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := &authclient.Client{Issuer: *issuer}

	var (
		tok authclient.Token
		err error
	)
	switch {
	case acct == "demo" || acct == *demoClient:
		secret, ferr := readSecret(filepath.Join(*secrets, "identity-demo-client.secret"))
		if ferr != nil {
			return ferr
		}
		tok, err = c.ClientCredentials(ctx, *demoClient, secret)
	case acct == "staff" || acct == "operator":
		password, ferr := readSecret(filepath.Join(*secrets, "identity-"+acct+".password"))
		if ferr != nil {
			return ferr
		}
		email := def(getenv("IDENTITY_"+strings.ToUpper(acct)+"_EMAIL"), acct+"@sagittarius.example")
		tok, err = c.SignIn(ctx, *cliClient, email, password)
	case strings.Contains(acct, "@"):
		password := getenv("SAGITTARIUS_PASSWORD")
		if password == "" {
			line, rerr := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
			if rerr != nil && rerr != io.EOF {
				return rerr
			}
			password = strings.TrimRight(line, "\r\n")
		}
		if password == "" {
			return errors.New("no password: set SAGITTARIUS_PASSWORD or type it on standard input")
		}
		tok, err = c.SignIn(ctx, *cliClient, acct, password)
	default:
		return fmt.Errorf("unknown account %q: want staff, operator, demo or a customer's e-mail", acct)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, describe(tok))
	fmt.Fprintln(stdout, tok.AccessToken)
	return nil
}

// readSecret reads the first line of a secret file.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w (scripts/up provisions it)", err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// describe says, for people, what the (unverified) token claims.
func describe(t authclient.Token) string {
	parts := strings.Split(t.AccessToken, ".")
	var c struct {
		Sub        string   `json:"sub"`
		Roles      []string `json:"roles"`
		CustomerID string   `json:"customer_id"`
		Scope      string   `json:"scope"`
	}
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(b, &c)
		}
	}
	s := fmt.Sprintf("# access token for %s, roles %v", c.Sub, c.Roles)
	if c.CustomerID != "" {
		s += ", customer " + c.CustomerID
	}
	return s + fmt.Sprintf(", expires in %ds; use it as: Authorization: Bearer <token>", t.ExpiresIn)
}
