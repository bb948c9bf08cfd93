package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// journeysEnv is the environment the end-to-end platform gives ops.journeys:
// a payment step that may take 4 s (not 30), checked twice a second, so that
// a journey whose payment does not come is stuck within seconds.
var journeysEnv = []string{"JOURNEY_STEP_LIMITS=payment=4s", "JOURNEY_CHECK_INTERVAL=500ms"}

// testConsole drives the operations console (GET /console/ on the gateway)
// in headless Chromium against the running platform: it shows the saga's
// journeys; with payments stopped, a new order's journey appears among the
// stuck journeys within its declared limit; when payments returns, the
// journey leaves them; its timeline opens on a click. Meanwhile the stuck
// gauge of ops.journeys rises. Screenshots go to
// SAGITTARIUS_SCREENSHOTS (a folder), or the test's temporary folder. It is
// skipped without Chromium. It runs last: it stops and restarts payments.
func testConsole(t *testing.T, c *Cluster) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	shots := os.Getenv("SAGITTARIUS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	r := call(t, "GET", c.Gateway+"/console/", nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		strings.Contains(string(r.Body), "http://") || strings.Contains(string(r.Body), "https://") {
		t.Fatalf("GET /console/: %d %s %s", r.Status, r.Header, r.Body)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	within := func(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, d)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			shot("failed.png")
			t.Fatalf("%s (console at %s): %v", what, loc, err)
		}
	}

	// The first action on bctx starts the browser and its tab, which live as
	// long as bctx: later steps may run under shorter contexts.
	// The console sends the operator's access token it keeps in
	// sessionStorage (sign-in through the identity provider is not built
	// yet): an operator token of the platform's provider, put there as the
	// console would.
	operator, err := c.p.OperatorToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1400, 1100), chromedp.Navigate(c.Gateway+"/console/")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[any](`sessionStorage.setItem('sagittarius.access_token', `+strconv.Quote(operator)+`); true`)); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatalf("browser: %v", err)
	}
	within(30*time.Second, "the console shows the saga's journeys",
		chromedp.WaitVisible(chromedp.CSS("#journey-rows tr.journey")),
		chromedp.WaitVisible(chromedp.CSS("#stuck-rows td")),
	)
	var count string
	for deadline := time.Now().Add(10 * time.Second); count == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		count, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#stuck-count")))
		if err != nil {
			break
		}
	}
	if err != nil || count != "0" {
		t.Errorf("stuck count %q before payments stopped (%v)", count, err)
	}
	shot("console-1-journeys.png")

	// Payments stops; an order is placed: its journey waits for the payment.
	// (The customer's payment method is registered with payments first.)
	cu := newCustomer(t, c)
	p := newProduct(t, c, 700, 5)
	paymentMethod(cu.ID, "tok_visa")
	payments := c.p.Service("payments")
	if err := payments.Primary().Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_, _ = payments.StartPrimary(context.Background())
		}
	}()
	_, o := place(t, c, orderBody(cu.ID, "tok_visa", line(p.ID, 1)), "")
	within(60*time.Second, "the order's journey among the stuck journeys",
		chromedp.WaitVisible(chromedp.CSS("#stuck-rows tr.stuck-journey")),
	)
	stuckText, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#stuck-rows")))
	if !strings.Contains(stuckText, "payment") || !strings.Contains(stuckText, o.ID[:8]) {
		t.Errorf("stuck journeys show %q, want the payment step of order %s", stuckText, o.ID)
	}
	shot("console-2-stuck.png")
	// The stuck gauge rose on ops.journeys' own /metrics (not proxied by the gateway).
	metrics := c.p.Service("journeys").Primary().URL() + "/metrics"
	eventually(t, 10*time.Second, "sagittarius_journeys_stuck{step=\"payment\"} 1 on "+metrics, func() (bool, string) {
		r := call(t, "GET", metrics, nil, nil)
		return strings.Contains(string(r.Body), `sagittarius_journeys_stuck{service="ops.journeys",step="payment"} 1`), string(r.Body)
	})

	// Payments returns: the journey moves on and leaves the stuck journeys.
	if _, err := payments.StartPrimary(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	within(90*time.Second, "the journey no longer stuck",
		chromedp.WaitNotPresent(chromedp.CSS("#stuck-rows tr.stuck-journey")),
	)
	waitOrder(t, o, "confirmed", func(o orderevents.Order) bool { return o.Status == orderevents.StatusConfirmed })

	// Its timeline, one click away.
	var page hal.Collection[journeyevents.Journey]
	get(t, c.Gateway+"/journeys/v1/journeys?order_id="+o.ID, &page)
	var id string
	for _, j := range page.Embedded["journeys"] {
		if j.Kind == "order_placement" {
			id = j.ID
		}
	}
	if id == "" {
		t.Fatalf("no placement journey for order %s", o.ID)
	}
	sel, _ := json.Marshal(id)
	within(30*time.Second, "the journey's timeline",
		chromedp.Click(chromedp.CSS("#journey-rows a[data-journey="+string(sel)+"]")),
		chromedp.WaitVisible(chromedp.CSS("#timeline-rows tr.timeline-event")),
	)
	timeline, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#timeline-rows")))
	for _, ev := range []string{"order_placed", "stock_reserved", "journey_stuck", "payment_captured", "journey_resumed"} {
		if !strings.Contains(timeline, ev) {
			t.Errorf("timeline %q lacks %s", timeline, ev)
		}
	}
	shot("console-3-timeline.png")
}
