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
// one: a base URL, or the comma-separated base URLs of several instances of
// the service, which the gateway balances (see upstreamsFrom); and the edge's
// variables (rate limits, CORS, connection bounds, TLS_CERT_FILE and
// TLS_KEY_FILE for HTTPS: package edge, README "The edge"). It stops
// gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/portal"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/gateway/access"
	"github.com/sagittarius-a/sagittarius/services/gateway/edge"
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
		gw, err := proxy.New(proxy.Config{Base: p.Base, Logger: p.Logger, Docs: docs, Console: portal.Console(), Upstreams: upstreams,
			WrapTransport: p.Telemetry.UpstreamTransport})
		if err != nil {
			return nil, err
		}
		p.Go("instance-health", func(ctx context.Context) error { <-ctx.Done(); gw.Close(); return nil })
		// The access rules of the embedded manifests (package access), then the proxy.
		var h http.Handler = gw
		if p.Verifier != nil { // nil only when printing contracts
			rules, err := access.Rules(manifests.FS)
			if err != nil {
				return nil, err
			}
			if h, err = access.New(rules, p.Verifier, p.Logger, gw); err != nil {
				return nil, err
			}
		}
		// The edge (package edge) in front: CORS, rate limits, connection bounds, HTTPS.
		front, err := edge.New(edge.ConfigFrom(getenv), nil)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		p.Listen = front.Listen
		p.Logger.Info("edge", "settings", front.Summary())
		return gateway{front.Wrap(h), gw}, nil
	})
}

// gateway serves every request itself (service.API and http.Handler): the
// edge, the access rules of the embedded manifests, then the proxy.
type gateway struct {
	http.Handler
	gw *proxy.Gateway
}

func (g gateway) Contract(contracts.Events) contracts.Service { return g.gw.Contract() }
