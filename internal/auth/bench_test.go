package auth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures one verification of the same token: "cached" is
// every request after the first (the gateway's case), "uncached" a
// signature check (RS256) per call.
func BenchmarkVerify(b *testing.B) {
	ti := newTestIssuer(b)
	k := rsaKey(b)
	ti.addKey(b, "k1", k)
	c := newClock()
	tok := sign(b, jwt.SigningMethodRS256, "k1", k, ti.claims(c.now()))
	for _, tc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := ti.config(c)
			cfg.CacheSize = tc.size
			v, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
