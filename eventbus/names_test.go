package eventbus

import (
	"strings"
	"testing"
)

func TestValidateServiceName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // substring; empty means valid
	}{
		{"sales.orders", ""},
		{"teaching-action.students-grades", ""},
		{"sales.email-accounts-validations", ""},
		{"logistics.inventory", ""},
		{"", "empty"},
		{"orders", "exactly one dot"},
		{"a.b.c", "exactly one dot"},
		{"Sales.Orders", "lowercase"},
		{"sales.orders_v2", "lowercase words joined by dashes"},
		{"sales.-orders", "lowercase words"},
		{"sales.orders-", "lowercase words"},
		{"sales.orders-queue", "queue"},
		{"queue.orders", "queue"},
		{".orders", "lowercase words"},
	}
	for _, tt := range tests {
		err := ValidateServiceName(tt.name)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateServiceName(%q) = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateServiceName(%q) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestValidateEventName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"order_placed", ""},
		{"email_dispatched", ""},
		{"payment_refunded", ""},
		{"stock_reservation_rejected", ""},
		{"shipment_sent", ""},
		{"invoice_paid", ""},
		{"grade_processed", ""},
		{"OrderPlace", "lower_snake_case"},
		{"EmailDispatch", "lower_snake_case"},
		{"order-placed", "lower_snake_case"},
		{"order__placed", "lower_snake_case"},
		{"place_order", "past tense"},
		{"order_place", "past tense"},
		{"order_need", "past tense"},
		{"", "empty"},
	}
	for _, tt := range tests {
		err := ValidateEventName(tt.name)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateEventName(%q) = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateEventName(%q) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestValidateEventNameSuggestsPastTense(t *testing.T) {
	err := ValidateEventName("place_order")
	if err == nil || !strings.Contains(err.Error(), "order_placed") {
		t.Fatalf("ValidateEventName(place_order) = %v, want a suggestion of order_placed", err)
	}
}
