package httpkit

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidatorsMatchTheirGrammar holds the hand-written validators to the
// regular expressions they replace, on random and edge-case inputs.
func TestValidatorsMatchTheirGrammar(t *testing.T) {
	reID := regexp.MustCompile(`^[A-Za-z0-9._:@/+=-]{1,128}$`)
	reTP := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
	zero := func(tp string) bool {
		return tp[3:35] == "00000000000000000000000000000000" || tp[36:52] == "0000000000000000"
	}
	const alphabet = "abcfAZ09._:@/+=- \x00é%g-"
	rnd := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, from string) string {
		var b strings.Builder
		for range n {
			b.WriteByte(from[rnd.IntN(len(from))])
		}
		return b.String()
	}
	ids := []string{"", "a", strings.Repeat("a", 128), strings.Repeat("a", 129), "req-1/x+y=z@h:1", "a b", "ü"}
	for range 20000 {
		ids = append(ids, gen(rnd.IntN(140), alphabet))
	}
	for _, id := range ids {
		if got, want := ValidRequestID(id), reID.MatchString(id); got != want {
			t.Fatalf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	tps := []string{NewTraceparent(), "00-" + strings.Repeat("0", 32) + "-" + strings.Repeat("1", 16) + "-01",
		"00-" + strings.Repeat("a", 32) + "-" + strings.Repeat("0", 16) + "-01", "01-" + strings.Repeat("a", 32) + "-" + strings.Repeat("b", 16) + "-01"}
	for range 20000 {
		tp := []byte(NewTraceparent())
		for range rnd.IntN(3) {
			tp[rnd.IntN(len(tp))] = "0aF-g9"[rnd.IntN(6)]
		}
		tps = append(tps, string(tp))
	}
	for _, tp := range tps {
		want := reTP.MatchString(tp) && !zero(tp)
		if got := ValidTraceparent(tp); got != want {
			t.Fatalf("ValidTraceparent(%q) = %v, want %v", tp, got, want)
		}
	}
	id, tp := newIDs()
	if !ValidRequestID(id) || len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || !ValidTraceparent(tp) {
		t.Fatalf("newIDs: %q %q", id, tp)
	}
}
