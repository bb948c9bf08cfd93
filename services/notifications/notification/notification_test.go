package notification_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

func TestCompose(t *testing.T) {
	f := notification.Facts{OrderID: "1a2b3c4d-0000-4000-8000-000000000000", Total: notification.Money{Amount: 12345, Currency: "EUR"},
		CancellationReason: "out_of_stock"}
	for _, c := range []struct {
		kind          notification.Kind
		subject, text string
	}{
		{notification.OrderConfirmed, "Your order #1a2b3c4d is confirmed", "payment of 123.45 EUR"},
		{notification.OrderCancelled, "Your order #1a2b3c4d was cancelled", "because some of its items are out of stock"},
		{notification.OrderShipped, "Your order #1a2b3c4d is on its way", "left our warehouse"},
		{notification.OrderDelivered, "Your order #1a2b3c4d was delivered", "was delivered"},
		{notification.PaymentRefunded, "Your refund for order #1a2b3c4d", "refunded 123.45 EUR"},
	} {
		subject, text, err := notification.Compose(c.kind, f)
		if err != nil || subject != c.subject || !strings.Contains(text, c.text) || !strings.Contains(text, f.OrderID) {
			t.Errorf("%s: %q %q %v", c.kind, subject, text, err)
		}
	}
	if _, _, err := notification.Compose("order_lost", f); err == nil {
		t.Error("an unknown kind composed")
	}
}

func TestRetryDelay(t *testing.T) {
	for attempts, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 20: 5 * time.Minute} {
		if got := notification.RetryDelay(attempts); got != want {
			t.Errorf("RetryDelay(%d) = %v, want %v", attempts, got, want)
		}
	}
	if s := (notification.Money{Amount: -5, Currency: "EUR"}).String(); s != "-0.05 EUR" {
		t.Errorf("Money: %q", s)
	}
}
