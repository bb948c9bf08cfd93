package eventbus

import (
	"encoding/json"
	"strings"
	"testing"
)

type decodeProbe struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

// typedDecoder reads a payload in one pass; it must apply the same rules,
// with the same reasons, as decodeEnvelope followed by decoding the entity.
func TestTypedDecoderAppliesTheEventRules(t *testing.T) {
	const id = "4b6c1c57-3b7a-4c36-9d5e-0b1a2c3d4e5f"
	const fired = `"2026-11-22T06:00:00.123Z"`
	dec := typedDecoder[decodeProbe]("probe")
	tests := []struct {
		name, body, reason string // reason "": valid
	}{
		{"valid", `{"uuid":"` + id + `","fired_at":` + fired + `,"probe":{"id":"p1","total":3}}`, ""},
		{"valid, keys in another order, extra keys", `{"probe":{"id":"p1","total":3},"x":[1,{"a":null}],"fired_at":` + fired + `,"uuid":"` + id + `"}`, ""},
		{"not JSON", `{"uuid":`, "payload is not a JSON object"},
		{"an array", `[1,2]`, "payload is not a JSON object"},
		{"a string", `"x"`, "payload is not a JSON object"},
		{"null", `null`, "payload has no uuid"},
		{"no uuid", `{"fired_at":` + fired + `,"probe":{}}`, "payload has no uuid"},
		{"uuid not a string", `{"uuid":5,"fired_at":` + fired + `,"probe":{}}`, "payload uuid is not a string"},
		{"uuid not a UUID", `{"uuid":"nope","fired_at":` + fired + `,"probe":{}}`, `payload uuid "nope" is not a UUID`},
		{"uuid not the message id", `{"uuid":"5b6c1c57-3b7a-4c36-9d5e-0b1a2c3d4e5f","fired_at":` + fired + `,"probe":{}}`, "message_id"},
		{"no fired_at", `{"uuid":"` + id + `","probe":{}}`, "payload has no fired_at"},
		{"fired_at not a string", `{"uuid":"` + id + `","fired_at":1,"probe":{}}`, "payload fired_at is not a string"},
		{"fired_at without milliseconds", `{"uuid":"` + id + `","fired_at":"2026-11-22T06:00:00Z","probe":{}}`, "is not YYYY-MM-DDTHH:mm:ss.sssZ"},
		{"no entity", `{"uuid":"` + id + `","fired_at":` + fired + `}`, `payload has no "probe" object`},
		{"entity null", `{"uuid":"` + id + `","fired_at":` + fired + `,"probe":null}`, `payload has no "probe" object`},
		{"entity a string", `{"uuid":"` + id + `","fired_at":` + fired + `,"probe":"p1"}`, `payload has no "probe" object`},
		{"entity of the wrong shape", `{"uuid":"` + id + `","fired_at":` + fired + `,"probe":{"id":"p1","total":"three"}}`, "entity does not decode into eventbus.decodeProbe"},
		{"wrong shape, and no uuid: the envelope is reported first", `{"fired_at":` + fired + `,"probe":{"total":"three"}}`, "payload has no uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := dec([]byte(tt.body), id)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("valid payload refused: %v", err)
				}
				p, ok := env.value.(*decodeProbe)
				if !ok || *p != (decodeProbe{ID: "p1", Total: 3}) || env.uuid != id || env.firedAt.Format(FiredAtLayout) != strings.Trim(fired, `"`) {
					t.Fatalf("decoded %+v (entity %v)", env, env.value)
				}
				return
			}
			mal, ok := err.(*MalformedError)
			if !ok || !strings.Contains(mal.Reason, tt.reason) {
				t.Fatalf("error %v, want a MalformedError with %q", err, tt.reason)
			}
			// The untyped path gives the same reason for every rule it checks.
			if _, uerr := decodeEnvelope([]byte(tt.body), id, "probe"); uerr != nil && !strings.Contains(tt.reason, "entity does not decode") {
				if um, ok := uerr.(*MalformedError); !ok || !strings.Contains(um.Reason, tt.reason) {
					t.Fatalf("decodeEnvelope says %v, typedDecoder %q", uerr, mal.Reason)
				}
			}
		})
	}
}

// An order-like payload of about 1.1 KB, as the saga's events are.
func benchPayload() (body []byte, id string) {
	id = "4b6c1c57-3b7a-4c36-9d5e-0b1a2c3d4e5f"
	links := `"_links":{"self":{"href":"http://127.0.0.1:8080/orders/v1/orders/` + id + `"},"customer":{"href":"http://127.0.0.1:8080/customers/v1/customers/` + id + `"},"products":[{"href":"http://127.0.0.1:8080/catalog/v1/products/1"},{"href":"http://127.0.0.1:8080/catalog/v1/products/2"}]}`
	line := `{"product_id":"` + id + `","product_name":"Bench widget","quantity":1,"unit_price":{"amount":1622,"currency":"EUR"}}`
	order := `{"id":"` + id + `","customer_id":"` + id + `","status":"pending","lines":[` + line + `,` + line + `],"total":{"amount":3049,"currency":"EUR"},` +
		`"shipping_address":{"name":"Bench Shopper","line1":"1 Load Street","postal_code":"10115","city":"Berlin","country":"DE"},"version":1,"placed_at":"2026-11-22T06:07:18.674261Z",` + links + `}`
	return []byte(`{"uuid":"` + id + `","fired_at":"2026-11-22T06:00:00.123Z","order":` + order + `}`), id
}

type benchOrder struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	Status     string `json:"status"`
	Lines      []struct {
		ProductID   string `json:"product_id"`
		ProductName string `json:"product_name"`
		Quantity    int    `json:"quantity"`
		UnitPrice   struct {
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		} `json:"unit_price"`
	} `json:"lines"`
	Total struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"total"`
	ShippingAddress map[string]string          `json:"shipping_address"`
	Version         int                        `json:"version"`
	PlacedAt        string                     `json:"placed_at"`
	Links           map[string]json.RawMessage `json:"_links"`
}

// go test -run - -bench Decode -benchmem ./eventbus: the typed decoder
// against the map of raw values and a second decode of the entity.
func BenchmarkDecodeTwoPasses(b *testing.B) {
	body, id := benchPayload()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		env, err := decodeEnvelope(body, id, "order")
		if err != nil {
			b.Fatal(err)
		}
		var o benchOrder
		if err := json.Unmarshal(env.entity, &o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTyped(b *testing.B) {
	body, id := benchPayload()
	dec := typedDecoder[benchOrder]("order")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := dec(body, id); err != nil {
			b.Fatal(err)
		}
	}
}

// decodeEnvelope is how the bus read payloads before typedDecoder: a map of
// raw values, the entity kept raw to be decoded again. The tests hold
// typedDecoder to its reasons, and the benchmarks measure against it.
func decodeEnvelope(body []byte, messageID, entityKey string) (envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return envelope{}, malformed("payload is not a JSON object: %v", err)
	}
	env, err := checkEnvelope(fields["uuid"], fields["fired_at"], messageID)
	if err != nil {
		return envelope{}, err
	}
	ent, ok := fields[entityKey]
	if !ok || len(ent) == 0 || ent[0] != '{' {
		return envelope{}, malformed("payload has no %q object", entityKey)
	}
	env.entity = ent
	return env, nil
}
