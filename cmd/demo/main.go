// Command demo drives orders through every path of the Sagittarius saga,
// purely by following HAL links from the gateway root (it knows relation
// names, never URL paths), and prints each order's journey as it happens:
// every status change of the order, its stock reservation, its payment and
// its shipment, with timestamps.
//
// The paths, run concurrently:
//
//	shipped           enough stock, card accepted: confirmed, then the demo dispatches and delivers the shipment
//	out-of-stock      more than the stock: reservation rejected, order cancelled (out_of_stock)
//	payment-declined  a payment method with token tok_decline: payment declined, stock released, order cancelled
//	cancelled-paid    confirmed, then cancelled by the customer: payment refunded, stock released, shipment cancelled
//
// At the end it follows the customer's notifications link and prints the
// e-mails crm.notifications recorded for the journeys (one per step: 8), sent
// or, without an SMTP server, not_sent with the reason.
//
// Usage: demo [-gateway http://127.0.0.1:8080] [-timeout 2m] [-secrets
// .data/secrets]. It acts as staff with the demo client's access token
// (client credentials; secret from scripts/up). It exits 1 when a path does
// not end as expected.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
)

// defaultSecrets is SAGITTARIUS_SECRETS, else <SAGITTARIUS_DATA or .data>/secrets.
func defaultSecrets(getenv func(string) string) string {
	if s := getenv("SAGITTARIUS_SECRETS"); s != "" {
		return s
	}
	data := getenv("SAGITTARIUS_DATA")
	if data == "" {
		data = ".data"
	}
	return data + "/secrets"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demo holds what every path needs.
type demo struct {
	client   *Client
	out      *Printer
	poll     time.Duration
	orders   string            // the orders collection
	customer string            // the customer's id
	cust     Resource          // the customer, as registered
	methods  map[string]string // the customer's payment methods, by token
	mug      string            // a product with plenty of stock
	lamp     string            // a product with one unit in stock
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	defGateway := getenv("SAGITTARIUS_GATEWAY")
	if defGateway == "" {
		defGateway = "http://127.0.0.1:8080"
	}
	gateway := fs.String("gateway", defGateway, "gateway root URL (env SAGITTARIUS_GATEWAY)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	poll := fs.Duration("poll", 100*time.Millisecond, "how often to read the orders and their resources")
	secrets := fs.String("secrets", defaultSecrets(getenv), "folder of the identity secrets written by scripts/up (env SAGITTARIUS_SECRETS)")
	issuer := fs.String("issuer", getenv("OIDC_ISSUER"), "the OpenID Connect issuer (env OIDC_ISSUER; default <gateway>/identity/oauth)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuer == "" {
		*issuer = strings.TrimSuffix(*gateway, "/") + "/identity/oauth"
	}
	// The demo acts as staff: the demo client's token (client credentials).
	source, err := authclient.DemoSource(*issuer, *secrets)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	d := &demo{
		client: &Client{HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &authclient.Transport{Source: source}}},
		out:    &Printer{w: stdout},
		poll:   *poll,
	}
	if err := d.setup(ctx, *gateway); err != nil {
		return fmt.Errorf("setup: %w", err)
	}

	paths := []struct {
		label string
		fn    func(context.Context, string) (*Journey, error)
	}{
		{"shipped", d.shipped},
		{"out-of-stock", d.outOfStock},
		{"payment-declined", d.paymentDeclined},
		{"cancelled-paid", d.cancelledAfterPayment},
	}
	type result struct {
		j   *Journey
		err error
	}
	results := make([]result, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() {
			j, err := p.fn(ctx, p.label)
			results[i] = result{j, err}
		})
	}
	wg.Wait()

	fmt.Fprintln(stdout, "\nSummary")
	var errs []error
	for i, p := range paths {
		r := results[i]
		mark, detail := "ok  ", ""
		if r.j != nil {
			detail = r.j.Summary()
		}
		if r.err != nil {
			mark = "FAIL"
			detail = strings.TrimSpace(detail + "  error: " + r.err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", p.label, r.err))
		}
		fmt.Fprintf(stdout, "  %s %-18s %s\n", mark, p.label, detail)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The journeys above cause 8 notifications: shipped (confirmed, shipped,
	// delivered), out-of-stock and payment-declined (cancelled each),
	// cancelled-paid (confirmed, cancelled, refunded).
	if err := d.notifications(ctx, stdout, 8); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	fmt.Fprintln(stdout, "\nEvery path completed.")
	return nil
}

// notifications follows the customer's notifications link (crm.notifications)
// until it lists want notifications, none of them still pending or sending,
// and prints them: the e-mails the shop sent, or why it did not.
func (d *demo) notifications(ctx context.Context, stdout io.Writer, want int) error {
	href, err := d.cust.Link("notifications")
	if err != nil {
		return err
	}
	var items []any
	err = Retry(ctx, d.poll, func(error) bool { return true }, func() error {
		r, err := d.client.Get(ctx, href+"&size=100")
		if err != nil {
			return err
		}
		embedded, _ := r.Body["_embedded"].(map[string]any)
		items, _ = embedded["notifications"].([]any)
		if len(items) != want {
			return fmt.Errorf("%d notifications, want %d", len(items), want)
		}
		for _, it := range items {
			if st, _ := it.(map[string]any)["status"].(string); st == "pending" || st == "sending" {
				return fmt.Errorf("a notification is still %s", st)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe customer's notifications (%s)\n", href)
	for _, it := range items {
		n := it.(map[string]any)
		str := func(k string) string { s, _ := n[k].(string); return s }
		line := fmt.Sprintf("  %-9s %-17s to %s: %q", str("status"), str("kind"), str("recipient"), str("subject"))
		if r := str("reason"); r != "" {
			line += " (" + r + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// follow reads from, then the resource its rel links.
func (d *demo) follow(ctx context.Context, from Resource, rel string) (Resource, error) {
	href, err := from.Link(rel)
	if err != nil {
		return Resource{}, err
	}
	return d.client.Get(ctx, href)
}

// setup registers a customer, adds two products and stocks them, all from
// the gateway root.
func (d *demo) setup(ctx context.Context, gateway string) error {
	run := strings.ToUpper(uuid.NewString()[:8])
	root, err := d.client.Get(ctx, gateway)
	if err != nil {
		return err
	}
	d.out.Printf("setup", "gateway root %s", root.Href)

	customers, err := d.follow(ctx, root, "customers")
	if err != nil {
		return err
	}
	coll, err := customers.Link("customers")
	if err != nil {
		return err
	}
	cust, err := d.client.Post(ctx, coll, map[string]any{
		"email": "demo-" + strings.ToLower(run) + "@example.com", "name": "Demo Customer " + run,
	}, nil)
	if err != nil {
		return err
	}
	d.customer, d.cust = cust.String("id"), cust
	d.out.Printf("setup", "customer registered    %s", cust.Href)

	// The customer's payment methods: the token stays with payments, orders
	// name the method.
	payments, err := d.follow(ctx, root, "payments")
	if err != nil {
		return err
	}
	methods, err := payments.Link("payment-methods")
	if err != nil {
		return err
	}
	d.methods = map[string]string{}
	for _, token := range []string{"tok_visa", "tok_decline"} {
		m, err := d.client.Post(ctx, methods, map[string]any{"token": token, "customer_id": d.customer}, nil)
		if err != nil {
			return err
		}
		d.methods[token] = m.String("id")
		d.out.Printf("setup", "payment method         %s (%s)", m.Href, token)
	}

	catalog, err := d.follow(ctx, root, "catalog")
	if err != nil {
		return err
	}
	products, err := catalog.Link("products")
	if err != nil {
		return err
	}
	add := func(sku, name string, cents int64, stock int) (string, error) {
		p, err := d.client.Post(ctx, products, map[string]any{
			"sku": "DEMO-" + run + "-" + sku, "name": name, "description": "added by scripts/demo",
			"price": map[string]any{"amount": cents, "currency": "EUR"},
		}, nil)
		if err != nil {
			return "", err
		}
		d.out.Printf("setup", "product added          %s (%s, %d.%02d EUR)", p.Href, name, cents/100, cents%100)
		// Inventory learns about the product from product_added: wait for its stock item.
		var item Resource
		err = Retry(ctx, d.poll, func(err error) bool { return StatusOf(err) == 404 }, func() error {
			var err error
			item, err = d.follow(ctx, p, "stock-item")
			return err
		})
		if err != nil {
			return "", err
		}
		repl, err := item.Link("replenishments")
		if err != nil {
			return "", err
		}
		if _, err := d.client.Post(ctx, repl, map[string]any{"quantity": stock}, nil); err != nil {
			return "", err
		}
		d.out.Printf("setup", "stock replenished      %s (+%d)", item.Href, stock)
		return p.String("id"), nil
	}
	if d.mug, err = add("MUG", "Sagittarius mug", 1299, 10); err != nil {
		return err
	}
	if d.lamp, err = add("LAMP", "Star lamp", 4999, 1); err != nil {
		return err
	}

	ordersRoot, err := d.follow(ctx, root, "orders")
	if err != nil {
		return err
	}
	d.orders, err = ordersRoot.Link("orders")
	return err
}

// place places an order and returns its journey. Orders knows customers and
// products from their events, so a 422 is retried until its read models
// caught up (with the same Idempotency-Key: a retried POST never places two
// orders).
func (d *demo) place(ctx context.Context, label, product string, quantity int, token string) (*Journey, error) {
	body := map[string]any{
		"customer_id":       d.customer,
		"lines":             []map[string]any{{"product_id": product, "quantity": quantity}},
		"payment_method_id": d.methods[token],
		"shipping_address": map[string]any{
			"name": "Demo Customer", "line1": "1 Galactic Centre Way", "postal_code": "08001", "city": "Barcelona", "country": "ES",
		},
	}
	key := map[string]string{"Idempotency-Key": uuid.NewString()}
	var order Resource
	err := Retry(ctx, d.poll, func(err error) bool { return StatusOf(err) == 422 }, func() error {
		var err error
		order, err = d.client.Post(ctx, d.orders, body, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.out.Printf(label, "order placed  %s (%d x product, token %s)", order.Href, quantity, token)
	return NewJourney(label, d.client, d.out, order.Href), nil
}

// shipped: enough stock, card accepted; the demo dispatches and delivers.
func (d *demo) shipped(ctx context.Context, label string) (*Journey, error) {
	j, err := d.place(ctx, label, d.mug, 1, "tok_visa")
	if err != nil {
		return nil, err
	}
	if err := j.WaitFor(ctx, d.poll, map[string]string{"order": "confirmed", "payment": "captured", "shipment": "scheduled"}); err != nil {
		return j, err
	}
	for _, step := range []struct{ shipment, order string }{{"dispatched", "shipped"}, {"delivered", "delivered"}} {
		sh := j.Resource("shipment")
		if _, err := d.client.Patch(ctx, sh.Href, map[string]any{"status": step.shipment}, sh.ETag); err != nil {
			return j, err
		}
		d.out.Printf(label, "demo: PATCH shipment status %s", step.shipment)
		if err := j.WaitFor(ctx, d.poll, map[string]string{"order": step.order, "shipment": step.shipment}); err != nil {
			return j, err
		}
	}
	return j, nil
}

// outOfStock: more lamps than in stock.
func (d *demo) outOfStock(ctx context.Context, label string) (*Journey, error) {
	j, err := d.place(ctx, label, d.lamp, 3, "tok_visa")
	if err != nil {
		return nil, err
	}
	if err := j.WaitFor(ctx, d.poll, map[string]string{"order": "cancelled", "reservation": "rejected"}); err != nil {
		return j, err
	}
	return j, expectReason(j, "out_of_stock")
}

// paymentDeclined: the simulated provider declines tok_decline.
func (d *demo) paymentDeclined(ctx context.Context, label string) (*Journey, error) {
	j, err := d.place(ctx, label, d.mug, 1, "tok_decline")
	if err != nil {
		return nil, err
	}
	if err := j.WaitFor(ctx, d.poll, map[string]string{"order": "cancelled", "payment": "declined", "reservation": "released"}); err != nil {
		return j, err
	}
	return j, expectReason(j, "payment_declined")
}

// cancelledAfterPayment: confirmed, then cancelled by the customer.
func (d *demo) cancelledAfterPayment(ctx context.Context, label string) (*Journey, error) {
	j, err := d.place(ctx, label, d.mug, 2, "tok_visa")
	if err != nil {
		return nil, err
	}
	if err := j.WaitFor(ctx, d.poll, map[string]string{"order": "confirmed", "payment": "captured"}); err != nil {
		return j, err
	}
	// The order may change under us (its shipment gets scheduled): on 412,
	// read it again and retry with the fresh ETag.
	err = Retry(ctx, d.poll, func(err error) bool { return StatusOf(err) == 412 }, func() error {
		o, err := d.client.Get(ctx, j.order)
		if err != nil {
			return err
		}
		_, err = d.client.Patch(ctx, o.Href, map[string]any{"status": "cancelled"}, o.ETag)
		return err
	})
	if err != nil {
		return j, err
	}
	d.out.Printf(label, "demo: PATCH order status cancelled")
	if err := j.WaitFor(ctx, d.poll, map[string]string{"order": "cancelled", "payment": "refunded", "reservation": "released"}); err != nil {
		return j, err
	}
	if err := expectReason(j, "customer_requested"); err != nil {
		return j, err
	}
	// A shipment scheduled before the cancellation must end cancelled.
	if j.Resource("order").HasLink("shipment") {
		return j, j.WaitFor(ctx, d.poll, map[string]string{"shipment": "cancelled"})
	}
	return j, nil
}

func expectReason(j *Journey, want string) error {
	if got := j.Resource("order").String("cancellation_reason"); got != want {
		return fmt.Errorf("order cancelled with reason %q, want %q", got, want)
	}
	return nil
}
