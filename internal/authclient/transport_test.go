package authclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
)

func TestTransportSendsTheSourcesToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, set := r.Header["Authorization"]
		if !set {
			v = []string{"<none>"}
		}
		got = append(got, v...)
	}))
	defer srv.Close()
	calls := 0
	c := &http.Client{Transport: &authclient.Transport{Source: func(context.Context) (string, error) { calls++; return "tok", nil }}}
	for _, h := range []*string{nil, ptr("Bearer mine"), ptr("")} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if h != nil {
			req.Header.Set("Authorization", *h)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if len(got) != 3 || got[0] != "Bearer tok" || got[1] != "Bearer mine" || got[2] != "<none>" || calls != 1 {
		t.Fatalf("sent %q (%d token fetches)", got, calls)
	}
}

func ptr(s string) *string { return &s }
