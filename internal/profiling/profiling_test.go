package profiling

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStartServesProfilesOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "no-port"} {
		if s, err := Start(addr, nil); err == nil {
			s.Close()
			t.Errorf("Start(%q): want an error (profiles stay on loopback)", addr)
		}
	}
	s, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := http.Get("http://" + s.Addr() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "heap profile") {
		t.Errorf("GET heap profile: %d %.200q", res.StatusCode, b)
	}
	s.Close()
	if _, err := http.Get("http://" + s.Addr() + "/debug/pprof/"); err == nil {
		t.Error("still serving after Close")
	}
}
