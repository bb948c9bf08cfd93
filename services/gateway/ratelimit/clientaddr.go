package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParsePrefixes reads a comma-separated list of addresses and CIDR
// prefixes (TRUSTED_PROXIES), e.g. "10.0.0.0/8, 127.0.0.1".
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientAddr returns the address of the client that sent r: the peer's
// address, or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy (the left-most entries are
// whatever the client wrote, so they are never believed). An address that
// cannot be parsed is returned as it stands.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(trusted) == 0 || !contains(trusted, peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			var f string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				f, list = list[j+1:], list[:j]
			} else {
				f, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil {
				return peer // garbage from a client: count the proxy's last hop
			}
			a = a.Unmap()
			if !contains(trusted, a) {
				return a
			}
			peer = a
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// AddrKey returns the KeyFunc counting per client address (ClientAddr with
// the trusted proxies): per IPv4 address, per IPv6 /64 (what one
// subscriber usually holds).
func AddrKey(trusted []netip.Prefix) KeyFunc {
	return func(r *http.Request) string { return addrKey(ClientAddr(r, trusted)) }
}

func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "addr:?"
	}
	var buf [64]byte // one allocation: the string
	b := append(buf[:0], "addr:"...)
	if a.Is6() {
		p, _ := a.Prefix(64)
		b, _ = p.AppendText(b)
	} else {
		b = a.AppendTo(b)
	}
	return string(b)
}
