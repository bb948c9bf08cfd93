package e2e

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/notifications/mailer/smtptest"
)

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildAll compiles every service of scripts/services.conf once per test
// binary into a temporary directory and returns it. Under -race the services
// are built with -race.
func buildAll(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		var lines []platform.Line
		if lines, buildErr = platform.ReadServices(root); buildErr != nil {
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "sagittarius-e2e-bin-"); buildErr != nil {
			return
		}
		buildErr = platform.Build(context.Background(), root, binDir, raceEnabled, lines)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Cluster is every service and the gateway running as processes.
type Cluster struct {
	Gateway string            // http://127.0.0.1:<port>, also PUBLIC_BASE_URL
	AMQPURL string            // admin URL of the test vhost
	Vhost   string            // the test vhost
	Queues  []string          // the services' main queues
	Direct  map[string]string // dir -> http://127.0.0.1:<port> of the service itself (not the gateway)
	// SMTP is the mail server crm.notifications sends to (its SMTP_ADDR).
	SMTP *smtptest.Server
	p    *platform.Platform
}

// startCluster starts every service of scripts/services.conf with
// internal/platform on the test servers: on free ports, each service with a
// fresh database and a RabbitMQ user with its production permissions, all in a
// fresh vhost, the gateway last, and waits until every /health is 200.
// Everything is stopped (SIGTERM, then SIGKILL after 20 s) and removed when
// the test ends; a service that exited on its own or did not stop cleanly
// fails the test, and on failure the end of each service's log is printed.
//
// extraEnv ("NAME=value") is given to every service and the gateway.
func startCluster(t *testing.T, extraEnv ...string) *Cluster {
	t.Helper()
	env := testinfra.RequireInfra(t)
	bin := buildAll(t, env.Root)
	smtp := smtptest.Start(t)
	lines, err := platform.ReadServices(env.Root)
	if err != nil {
		t.Fatal(err)
	}
	perService := map[string][]string{}
	for _, l := range lines {
		perService[l.Dir] = append([]string(nil), extraEnv...)
	}
	perService["notifications"] = append(perService["notifications"], "SMTP_ADDR="+smtp.Addr, "SMTP_FROM=Sagittarius E2E <shop@example.com>")
	perService["journeys"] = append(perService["journeys"], journeysEnv...)
	// The attack tests send bursts of wrong passwords from this process's
	// address, which the gateway's sign-in back-off (rightly) punishes; the
	// other tests sign customers up from the same address meanwhile. The
	// identity provider's own lockout per account stays on.
	perService["gateway"] = append(perService["gateway"], "RATE_LIMIT_SIGNIN=100000/s", "RATE_LIMIT_BACKOFF=off")
	p, err := platform.Start(context.Background(), platform.Config{
		Root: env.Root, Dir: t.TempDir(), Bin: bin, Servers: platform.ServersFromTestEnv(env), Env: perService,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Gateway: p.Gateway, AMQPURL: p.AdminAMQPURL(), Vhost: p.Vhost, Direct: map[string]string{}, SMTP: smtp, p: p}
	staffToken = func() (string, error) { return p.StaffToken(context.Background()) }
	gatewayURL = p.Gateway
	for _, s := range p.Services() {
		c.Queues = append(c.Queues, s.Name)
		c.Direct[s.Dir] = s.Primary().URL()
	}
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends every process the cluster started and removes the vhost, users
// and databases. A service that exited before stop was asked is reported,
// as is one that did not stop gracefully.
func (c *Cluster) stop(t *testing.T) {
	for _, in := range c.p.Crashed() {
		t.Errorf("%s had exited before the end of the test:\n%s", in, in.Tail(40))
	}
	if t.Failed() {
		for _, s := range c.p.All() {
			for _, in := range s.All() {
				t.Logf("--- end of %s log:\n%s", in, in.Tail(15))
			}
		}
	}
	if err := c.p.Close(); err != nil {
		t.Error(err)
	}
}
