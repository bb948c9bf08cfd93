package hal

import (
	"encoding/json"
	"reflect"
	"testing"
)

// referenceLinks decodes b as encoding/json decodes a map of relations: the
// behaviour Links.UnmarshalJSON must keep.
func referenceLinks(b []byte) (map[string]Rel, error) {
	var m map[string]Rel
	err := json.Unmarshal(b, &m)
	return m, err
}

var linkDocs = []string{
	`{}`,
	` { } `,
	`null`,
	`{"self":{"href":"http://x/orders/1"}}`,
	`{"self":{"href":"http://x/o{?status}","templated":true,"title":"Orders","name":"o","type":"application/hal+json"}}`,
	`{"self":{"templated":false,"href":"a"},"products":[{"href":"p1"},{"href":"p2"}],"empty":[]}`,
	"{\n\t\"self\" : { \"href\" : \"a\" } ,\r\n \"list\" : [ { \"href\" : \"b\" } , { } ] \n}",
	`{"self":{"href":"a"},"self":{"href":"b"}}`, // duplicate: the last wins
	`{"self":{"href":"a\/b"}}`,        // escape: encoding/json
	`{"self":{"href":"caf\u00e9"}}`,   // escape: encoding/json
	`{"self":{"href":"café"}}`,        // not ASCII: encoding/json
	`{"self":{"HREF":"a"}}`,           // other spelling: encoding/json
	`{"self":{"href":"a","extra":1}}`, // unknown field: encoding/json
	`{"self":{"href":null}}`,          // null field: encoding/json
	`{"self":null}`,                   // null relation: encoding/json
	`{"self":"not a link"}`,           // error
	`{"self":[{"href":"a"},"x"]}`,     // error
	`{"self":{"templated":"yes"}}`,    // error
	`{"s\"elf":{"href":"a"}}`,         // escaped name: encoding/json
	`{"self":{"href":"a"}} `,
}

func TestLinksUnmarshalMatchesEncodingJSON(t *testing.T) {
	for _, doc := range linkDocs {
		checkLinksDecode(t, []byte(doc))
	}
}

func checkLinksDecode(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		return // Unmarshal validates before calling UnmarshalJSON
	}
	want, wantErr := referenceLinks(b)
	var got Links
	gotErr := got.UnmarshalJSON(b)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, encoding/json says %v", b, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(map[string]Rel(got), want) {
		t.Fatalf("%s:\n got  %#v\n want %#v", b, got, want)
	}
}

func TestTheUsualShapeTakesTheFastPath(t *testing.T) {
	for _, doc := range []string{linkDocs[0], linkDocs[3], linkDocs[4], linkDocs[5], linkDocs[6]} {
		if _, ok := parseLinks([]byte(doc)); !ok {
			t.Errorf("%s: not read in one pass", doc)
		}
	}
}

func FuzzLinksUnmarshal(f *testing.F) {
	for _, doc := range linkDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkLinksDecode(t, b) })
}

func BenchmarkLinksUnmarshal(b *testing.B) {
	doc := []byte(`{"collection":{"href":"http://127.0.0.1:8080/orders/v1/orders"},"customer":{"href":"http://127.0.0.1:8080/customers/v1/customers/f57d26ab-d81f-475f-b3b6-f3cfa9717d04"},"products":[{"href":"http://127.0.0.1:8080/catalog/v1/products/ea8c15fd-aff2-4456-bdba-499eec5a5c39"},{"href":"http://127.0.0.1:8080/catalog/v1/products/c63014db-ca6f-4edb-82c1-d709f0319f8a"}],"reservation":{"href":"http://127.0.0.1:8080/inventory/v1/reservations/1f6e9d0a-2a6b-4e20-9ab5-8703d097035a"},"self":{"href":"http://127.0.0.1:8080/orders/v1/orders/1f6e9d0a-2a6b-4e20-9ab5-8703d097035a"}}`)
	b.Run("one pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ls Links
			if err := json.Unmarshal(doc, &ls); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json per relation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceLinks(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
