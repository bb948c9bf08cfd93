// Command gateway runs the API gateway of Sagittarius on :8080: the HAL root
// linking every service, the developer portal, and a reverse proxy from
// /<dir>/... to each service. It has no queue and no database. Before
// proxying it enforces the access each operation's OpenAPI manifest declares
// (package access; OIDC_ISSUER and OIDC_AUDIENCE as for every service).
//
// Environment: the service kit's HTTP_ADDR (default 127.0.0.1:8080),
// PUBLIC_BASE_URL, PPROF_ADDR and SHUTDOWN_GRACE (service.Config), and the
// services behind it: UPSTREAMS, derived from scripts/services.conf by
// scripts/infra-up, or services.conf itself, and UPSTREAM_<DIR> to override
// one (see upstreamsFrom). It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"io"
	"net/http"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/portal"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/gateway/access"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

func main() { service.Main(run) }

// run serves the gateway until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	upstreams, err := upstreamsFrom(getenv)
	if err != nil {
		return err
	}
	spec := service.Spec{Dir: "gateway", Addr: "127.0.0.1:8080"}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		docs, err := portal.New(manifests.FS, "/docs")
		if err != nil {
			return nil, err
		}
		gw, err := proxy.New(proxy.Config{Base: p.Base, Logger: p.Logger, Docs: docs, Upstreams: upstreams})
		if err != nil {
			return nil, err
		}
		g := gateway{Gateway: gw, h: gw}
		if p.Verifier != nil { // nil only when printing contracts
			rules, err := access.Rules(manifests.FS)
			if err != nil {
				return nil, err
			}
			if g.h, err = access.New(rules, p.Verifier, p.Logger, gw); err != nil {
				return nil, err
			}
		}
		return g, nil
	})
}

// gateway serves every request itself (service.API and http.Handler): the
// access rules of the embedded manifests (package access), then the proxy.
type gateway struct {
	*proxy.Gateway
	h http.Handler
}

func (g gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.h.ServeHTTP(w, r) }

func (g gateway) Contract(contracts.Events) contracts.Service { return g.Gateway.Contract() }
