package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
)

// TestSignInWithARealBrowser signs a customer in with headless Chromium, as
// a person would: the client (a loopback server standing for a native app)
// sends the browser to /authorize; the person types e-mail and password
// into the sign-in page and submits; the browser follows the redirects back
// to the client with a code, which the client exchanges with its PKCE
// verifier. It is skipped when Chromium is not installed.
func TestSignInWithARealBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	p := newPlatform(t)
	ann := p.signUp(t, "ann@example.com", "ann's long password")

	type result struct{ code, state string }
	got := make(chan result, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- result{r.URL.Query().Get("code"), r.URL.Query().Get("state")}:
			default:
			}
		}
		w.Write([]byte("signed in"))
	}))
	defer app.Close()
	verifier := "browser-verifier-browser-verifier-browser-verifier"
	sum := sha256.Sum256([]byte(verifier))
	authorize := p.issuer() + "/authorize?" + url.Values{
		"client_id": {idp.CLIClientID}, "redirect_uri": {app.URL + "/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	err = chromedp.Do(bctx,
		chromedp.Navigate(authorize),
		chromedp.WaitVisible(chromedp.ID("email")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("email"), "ann@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "ann's long password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if title != "Sign in to Sagittarius" {
		t.Fatalf("page title %q", title)
	}
	var res result
	select {
	case res = <-got:
	case <-time.After(30 * time.Second):
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		t.Fatalf("the browser never reached the client's redirect URI (it is at %s)", loc)
	}
	if res.code == "" || res.state != "st-1" {
		t.Fatalf("redirect %+v", res)
	}

	// The app exchanges the code with its verifier.
	tr, err := http.PostForm(p.issuer()+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.code},
		"redirect_uri": {app.URL + "/callback"}, "client_id": {idp.CLIClientID}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := decode(tr, &tok); err != nil || tr.StatusCode != 200 {
		t.Fatalf("token: %d %v", tr.StatusCode, err)
	}
	pr, err := p.verifier(t).Verify(context.Background(), tok.AccessToken)
	if err != nil || pr.Subject != ann.ID || !pr.HasRole(auth.RoleCustomer) {
		t.Fatalf("principal %+v %v", pr, err)
	}
}
