// Package platform runs a private instance of the whole Sagittarius platform
// on this machine, for the programs and tests that need all of it at once:
// every service of scripts/services.conf built from the working tree and run
// as a process on a free port that the caller may kill with SIGKILL, restart,
// or run twice, the gateway last, in front of them.
//
// The servers are either its own (the default: scripts/chaos) or ones that
// already run (Config.Servers: the end-to-end tests and cmd/bench, on the
// servers of scripts/infra-up). Its own are a MariaDB server and a RabbitMQ
// node on free ports with their data under one folder, provisioned like
// production by scripts/infra-up: vhost sagittarius, exchange sagittarius-a,
// one least-privilege RabbitMQ user and one MySQL user and database per
// service. On servers that already run, the platform makes the same in a
// fresh vhost with fresh users and databases of random names, and removes
// them on Close. Optionally every service reaches the broker through its own
// Proxy, whose link can be cut or black-holed.
//
// Every service trusts the identity service behind the gateway
// (OIDC_ISSUER, Platform.Issuer), provisioned with secrets generated under
// Dir/secrets: StaffToken and SignUpCustomer give callers real tokens.
//
// Nothing is shared with other runs: several platforms can run side by side.
package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// Vhost and Exchange are the names production uses (scripts/infra-up). A
// platform on its own servers uses the vhost Vhost; Platform.Vhost says which.
const (
	Vhost    = "sagittarius"
	Exchange = "sagittarius-a"
)

// Config configures Start.
type Config struct {
	// Root is the repository (scripts/, services/). Required.
	Root string
	// Dir holds everything the platform writes: binaries, logs and, with
	// servers of its own, databases and broker data. It must exist and, with
	// servers of its own, be traversable by user rabbitmq.
	Dir string
	// Servers, when set, are the RabbitMQ node and the MariaDB server to run
	// on; nil starts servers of the platform's own under Dir.
	Servers *Servers
	// Bin, when set, holds the services' binaries already built (see Build);
	// otherwise Start builds them into Dir/bin.
	Bin string
	// QueueType is the services' QUEUE_TYPE: classic (default) or quorum.
	QueueType string
	// Race builds the services with the race detector.
	Race bool
	// Proxies puts a Proxy between each service and the broker.
	Proxies bool
	// Env holds extra environment variables per service dir, given to every
	// instance started (e.g. FAULT_INJECT for payments). Service.Env can be
	// changed later.
	Env map[string][]string
	// Log receives one line per step (nil: none).
	Log io.Writer
	// Nodes is the number of RabbitMQ nodes of the platform's own: 0 or 1
	// for one node, 3 (or more) for a cluster (see cluster.go). A cluster
	// implies QueueType quorum and no Proxies.
	Nodes int
	// Instances is the number of instances of every domain service started
	// (default 1); the gateway balances over all of them.
	Instances int
}

// Servers are a RabbitMQ node and a MariaDB server that already run, such as
// those of scripts/infra-up, given by the administrators' URLs that
// scripts/test exports (testinfra.Env). The administrators must be allowed to
// create vhosts, users and databases, and to grant privileges.
type Servers struct {
	AMQPURL   string // administrator's AMQP URL without vhost: amqp://user:pw@host:port/
	RabbitAPI string // management API base URL with the administrator's credentials
	MySQLDSN  string // administrator's DSN without database
}

// ServersFromTestEnv returns the servers of the test environment.
func ServersFromTestEnv(e testinfra.Env) *Servers {
	return &Servers{AMQPURL: e.AMQPURL, RabbitAPI: e.RabbitAPI, MySQLDSN: e.MySQLDSN}
}

// Platform is a running platform. Its methods are safe for concurrent use.
type Platform struct {
	cfg    Config
	DB     *MariaDB
	Broker *RabbitNode
	// Nodes are every RabbitMQ node of the platform's own (Broker is the
	// first); one unless Config.Nodes asked for a cluster.
	Nodes    []*RabbitNode
	Vhost    string // the services' vhost
	Gateway  string // http://127.0.0.1:<port>, also PUBLIC_BASE_URL
	bin      string
	logs     string
	prefix   string // of the names of vhost, users and databases on servers that are not the platform's own
	services []*Service
	rootsMu  sync.Mutex
	roots    map[string]*sqlx.DB
	tokenCache
}

// Service is one line of scripts/services.conf with the instances running it.
type Service struct {
	Dir  string // services/<dir>, gateway prefix, UPSTREAM_<DIR>
	Name string // queue, app_id; "-" for the gateway
	// Database is the MySQL database ("" for the gateway); the name of the
	// service's line on servers of the platform's own, prefixed otherwise.
	Database string
	// Port is the primary instance's port, the one the gateway forwards to.
	Port int
	// Ports are the ports of the instances the platform starts (Port first;
	// Config.Instances of them), all of which the gateway balances.
	Ports []int
	// Proxy is between the service and the broker (nil without Config.Proxies
	// and for the gateway).
	Proxy *Proxy

	p        *Platform
	user     string // RabbitMQ and MySQL user
	password string
	mu       sync.Mutex
	env      []string
	insts    []*Instance
	started  int
}

// Instance is one process of a service.
type Instance struct {
	Service *Service
	N       int    // 1, 2, … in start order
	Addr    string // 127.0.0.1:<port>
	Log     string // file with its stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{}
	ended   atomic.Bool // Kill or Stop was called
}

// Start builds every service (unless Config.Bin), starts or attaches to the
// servers, provisions them, starts every service (the gateway last) and
// returns once every /health answers 200. On error, what was started is
// stopped and what was made is removed.
func Start(ctx context.Context, cfg Config) (p *Platform, err error) {
	if cfg.Root == "" || cfg.Dir == "" {
		return nil, errors.New("platform: Config.Root and Config.Dir are required")
	}
	if cfg.QueueType == "" {
		cfg.QueueType = "classic"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Instances < 1 {
		cfg.Instances = 1
	}
	if cfg.Nodes > 1 {
		if cfg.Servers != nil {
			return nil, errors.New("platform: Config.Nodes needs servers of the platform's own")
		}
		cfg.QueueType, cfg.Proxies = "quorum", false
	}
	p = &Platform{cfg: cfg, bin: cfg.Bin, logs: filepath.Join(cfg.Dir, "logs"), roots: map[string]*sqlx.DB{}, Vhost: Vhost}
	if p.bin == "" {
		p.bin = filepath.Join(cfg.Dir, "bin")
	}
	started := p // a failed Start returns a nil p: close what this one started
	defer func() {
		if err != nil {
			_ = started.Close()
		}
	}()
	for _, d := range []string{p.bin, p.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	identityEnv, err := writeSecrets(p.SecretsDir())
	if err != nil {
		return nil, err
	}
	lines, err := ReadServices(cfg.Root)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(5 + len(lines))
	if err != nil {
		return nil, err
	}
	if cfg.Servers == nil {
		p.DB = newMariaDB(filepath.Join(cfg.Dir, "mariadb"), ports[0])
		p.Broker = newRabbitNode(cfg.Root, filepath.Join(cfg.Dir, "rabbitmq"), [3]int{ports[1], ports[2], ports[3]})
		p.Nodes = []*RabbitNode{p.Broker}
		if cfg.Nodes > 1 {
			if err := p.addNodes(cfg.Nodes); err != nil {
				return nil, err
			}
		}
	} else {
		if p.DB, err = attachMariaDB(cfg.Servers.MySQLDSN); err != nil {
			return nil, err
		}
		if p.Broker, err = attachRabbitNode(cfg.Servers.AMQPURL, cfg.Servers.RabbitAPI); err != nil {
			return nil, err
		}
		p.prefix = "platform-" + randomHex(4)
		p.Vhost = p.prefix
	}
	for i, l := range lines {
		s := &Service{Dir: l.Dir, Name: l.Name, Database: l.Database(), p: p, Port: ports[5+i], password: randomHex(16)}
		s.Ports = []int{s.Port}
		if l.HasQueue() && cfg.Instances > 1 {
			more, err := freePorts(cfg.Instances - 1)
			if err != nil {
				return nil, err
			}
			s.Ports = append(s.Ports, more...)
		}
		s.env = append([]string(nil), cfg.Env[s.Dir]...)
		if l.Dir == "identity" {
			s.env = append(identityEnv, s.env...)
		}
		s.user = s.Name
		if p.prefix != "" && l.HasQueue() {
			// Unique on shared servers; the permissions still name the service.
			s.user = p.prefix + "-" + s.Name
			s.Database = "p" + strings.TrimPrefix(p.prefix, "platform-") + "_" + s.Database
		}
		if l.Dir == "gateway" {
			p.Gateway = "http://127.0.0.1:" + strconv.Itoa(s.Port)
		}
		p.services = append(p.services, s)
	}
	if p.Gateway == "" {
		return nil, errors.New("platform: scripts/services.conf has no gateway")
	}

	// The build and the two servers are independent: overlap them.
	p.logf("building %d services, starting MariaDB (port %d) and RabbitMQ node %s (AMQP %d, management %d) under %s",
		len(p.services), p.DB.Port, p.Broker.Name, p.Broker.AMQPPort, p.Broker.APIPort, cfg.Dir)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	if cfg.Bin == "" {
		wg.Go(func() { errs[0] = Build(ctx, cfg.Root, p.bin, cfg.Race, lines) })
	}
	if cfg.Servers == nil {
		wg.Go(func() { errs[1] = p.DB.Start(ctx) })
		wg.Go(func() {
			errs[2] = p.startBroker(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := p.provisionBroker(ctx); err != nil {
		return nil, err
	}
	if err := p.provisionDatabases(ctx); err != nil {
		return nil, err
	}
	if cfg.Proxies {
		for _, s := range p.Services() {
			if s.Proxy, err = NewProxy("127.0.0.1:0", p.Broker.amqpHost()); err != nil {
				return nil, err
			}
		}
	}
	// Services first (in parallel), the gateway last, as scripts/up does.
	// With several instances, the first of each service migrates its
	// database before the others start (concurrent migrations collide).
	var starts []*Instance
	for i := 0; i < p.cfg.Instances; i++ {
		var round []*Instance
		for _, s := range p.Services() {
			if i >= len(s.Ports) {
				continue
			}
			in, err := s.start(s.Ports[i])
			if err != nil {
				return nil, err
			}
			round = append(round, in)
		}
		for _, in := range round {
			if err := in.WaitHealthy(ctx, 90*time.Second); err != nil {
				return nil, err
			}
		}
		starts = append(starts, round...)
	}
	gw := p.Service("gateway")
	in, err := gw.start(gw.Port)
	if err != nil {
		return nil, err
	}
	if err := in.WaitHealthy(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	p.logf("platform up: gateway %s, %d service instances", p.Gateway, len(starts))
	return p, nil
}

// Build compiles the services of lines (services/<dir>) into the folder bin,
// one binary per dir, with the race detector if race.
func Build(ctx context.Context, root, bin string, race bool, lines []Line) error {
	args := []string{"build", "-o", bin + string(os.PathSeparator)}
	if race {
		args = append(args, "-race")
	}
	for _, l := range lines {
		args = append(args, "./services/"+l.Dir)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

func (p *Platform) logf(format string, args ...any) {
	fmt.Fprintf(p.cfg.Log, "    "+format+"\n", args...)
}

// Services returns the domain services (every service but the gateway), in
// the order of scripts/services.conf.
func (p *Platform) Services() []*Service {
	var out []*Service
	for _, s := range p.services {
		if s.Name != "-" {
			out = append(out, s)
		}
	}
	return out
}

// All returns every service, the gateway included, in the order of
// scripts/services.conf.
func (p *Platform) All() []*Service { return append([]*Service(nil), p.services...) }

// Service returns the service of dir, or nil.
func (p *Platform) Service(dir string) *Service {
	for _, s := range p.services {
		if s.Dir == dir {
			return s
		}
	}
	return nil
}

// ServiceDB returns a pool on the database of the service of dir, as the
// servers' administrator (to read its outbox and inbox). It is opened once
// and closed by Close.
func (p *Platform) ServiceDB(dir string) (*sqlx.DB, error) {
	p.rootsMu.Lock()
	defer p.rootsMu.Unlock()
	if db := p.roots[dir]; db != nil {
		return db, nil
	}
	s := p.Service(dir)
	if s == nil || s.Database == "" {
		return nil, fmt.Errorf("platform: no database for %q", dir)
	}
	db, err := p.DB.openRoot(s.Database)
	if err != nil {
		return nil, err
	}
	p.roots[dir] = db
	return db, nil
}

// AdminAMQPURL is the broker administrator's URL of the platform's vhost.
func (p *Platform) AdminAMQPURL() string { return p.Broker.AdminURL(p.Vhost) }

// LogDir is where the processes' logs are.
func (p *Platform) LogDir() string { return p.logs }

// Crashed returns the instances that exited without Kill or Stop being
// called: they died on their own.
func (p *Platform) Crashed() []*Instance {
	var out []*Instance
	for _, s := range p.services {
		for _, in := range s.All() {
			if in.Exited() && !in.Killed() {
				out = append(out, in)
			}
		}
	}
	return out
}

// Close stops every instance (SIGTERM, SIGKILL after 20 s) and the proxies.
// Servers of the platform's own are stopped (the broker's folder is deleted);
// on servers that already ran, the vhost, users and databases it made are
// removed. It reports instances that did not stop cleanly.
func (p *Platform) Close() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	// The gateway first, so that it does not see its upstreams go.
	for _, s := range append([]*Service{p.Service("gateway")}, p.Services()...) {
		if s == nil {
			continue
		}
		for _, in := range s.Instances() {
			wg.Go(func() {
				if err := in.Stop(20 * time.Second); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		if s.Dir == "gateway" {
			wg.Wait()
		}
	}
	wg.Wait()
	for _, s := range p.services {
		if s.Proxy != nil {
			s.Proxy.Close()
		}
	}
	p.rootsMu.Lock()
	for _, db := range p.roots {
		db.Close()
	}
	p.roots = map[string]*sqlx.DB{}
	p.rootsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if p.cfg.Servers != nil {
		return errors.Join(append(errs, p.unprovision(ctx))...)
	}
	for _, n := range p.Nodes {
		if err := n.Purge(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if p.DB != nil {
		if err := p.DB.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Platform) provisionBroker(ctx context.Context) error {
	b := p.Broker
	vh := url.PathEscape(p.Vhost)
	all := testinfra.Permissions{Configure: ".*", Write: ".*", Read: ".*"}
	type step struct {
		method, path string
		body         any
	}
	steps := []step{
		{http.MethodPut, "/api/vhosts/" + vh, map[string]string{"description": "Sagittarius (internal/platform)"}},
		{http.MethodPut, "/api/permissions/" + vh + "/" + url.PathEscape(b.User), all},
		{http.MethodPut, "/api/exchanges/" + vh + "/" + Exchange,
			map[string]any{"type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": map[string]any{}}},
	}
	for _, s := range p.Services() {
		steps = append(steps,
			step{http.MethodPut, "/api/users/" + url.PathEscape(s.user), map[string]string{"password": s.password, "tags": ""}},
			step{http.MethodPut, "/api/permissions/" + vh + "/" + url.PathEscape(s.user), testinfra.ServicePermissions(s.Name)},
		)
	}
	for _, st := range steps {
		if err := b.API(ctx, st.method, st.path, st.body, nil); err != nil {
			return err
		}
	}
	return nil
}

func (p *Platform) provisionDatabases(ctx context.Context) error {
	db, err := p.DB.openRoot("")
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range p.Services() {
		escaped := strings.ReplaceAll(s.Database, "_", `\_`) // in GRANT, _ is a wildcard
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS `" + s.Database + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
			"CREATE USER IF NOT EXISTS '" + s.Database + "'@'" + p.DB.userHost + "' IDENTIFIED BY '" + s.password + "'",
			"GRANT ALL PRIVILEGES ON `" + escaped + "`.* TO '" + s.Database + "'@'" + p.DB.userHost + "'",
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("provisioning %s: %w", s.Database, err)
			}
		}
	}
	return nil
}

// unprovision removes, from servers the platform does not own, what
// provisionBroker and provisionDatabases made (also after a partial start).
func (p *Platform) unprovision(ctx context.Context) error {
	var errs []error
	if p.Broker != nil && p.prefix != "" {
		vh := url.PathEscape(p.Vhost)
		errs = append(errs, p.Broker.delete(ctx, "/api/vhosts/"+vh))
		for _, s := range p.Services() {
			errs = append(errs, p.Broker.delete(ctx, "/api/users/"+url.PathEscape(s.user)))
		}
	}
	if p.DB != nil && p.prefix != "" {
		db, err := p.DB.openRoot("")
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		defer db.Close()
		for _, s := range p.Services() {
			for _, q := range []string{
				"DROP DATABASE IF EXISTS `" + s.Database + "`",
				"DROP USER IF EXISTS '" + s.Database + "'@'" + p.DB.userHost + "'",
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					errs = append(errs, fmt.Errorf("removing %s: %w", s.Database, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Env returns the extra environment given to new instances.
func (s *Service) Env() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.env...)
}

// SetEnv replaces the extra environment given to new instances (running
// ones keep theirs).
func (s *Service) SetEnv(env ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env = append([]string(nil), env...)
}

// Instances returns the instances still running.
func (s *Service) Instances() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Instance
	for _, in := range s.insts {
		if !in.Exited() {
			out = append(out, in)
		}
	}
	return out
}

// All returns every instance ever started, running or not.
func (s *Service) All() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Instance(nil), s.insts...)
}

// Primary returns the running instance on the service's own port, or nil.
func (s *Service) Primary() *Instance {
	for _, in := range s.Instances() {
		if in.Addr == "127.0.0.1:"+strconv.Itoa(s.Port) {
			return in
		}
	}
	return nil
}

// Restart kills the primary instance with SIGKILL (if it runs), starts a new
// one on the same port and waits until it is healthy.
func (s *Service) Restart(ctx context.Context) (*Instance, error) {
	if in := s.Primary(); in != nil {
		if err := in.Kill(); err != nil {
			return nil, err
		}
	}
	return s.StartPrimary(ctx)
}

// StartPrimary starts an instance on the service's own port and waits until
// it is healthy. The port must be free (kill the primary first).
func (s *Service) StartPrimary(ctx context.Context) (*Instance, error) {
	in, err := s.start(s.Port)
	if err != nil {
		return nil, err
	}
	return in, in.WaitHealthy(ctx, 90*time.Second)
}

// StartExtra starts one more instance on a free port (same database, queue
// and broker user) and waits until it is healthy.
func (s *Service) StartExtra(ctx context.Context) (*Instance, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	in, err := s.start(ports[0])
	if err != nil {
		return nil, err
	}
	return in, in.WaitHealthy(ctx, 90*time.Second)
}

func (s *Service) start(port int) (*Instance, error) {
	p := s.p
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"HTTP_ADDR=" + addr, "PUBLIC_BASE_URL=" + p.Gateway, "OIDC_ISSUER=" + p.Issuer(), "OIDC_AUDIENCE=sagittarius"}
	if s.Name == "-" {
		for _, o := range p.Services() {
			var urls []string
			for _, port := range o.Ports {
				urls = append(urls, "http://127.0.0.1:"+strconv.Itoa(port))
			}
			env = append(env, "UPSTREAM_"+strings.ToUpper(strings.ReplaceAll(o.Dir, "-", "_"))+"="+strings.Join(urls, ","))
		}
	} else {
		amqpHost := p.Broker.amqpHost()
		if s.Proxy != nil {
			amqpHost = s.Proxy.Addr()
		}
		amqpURL := (&url.URL{Scheme: "amqp", User: url.UserPassword(s.user, s.password), Host: amqpHost, Path: "/" + p.Vhost}).String()
		if len(p.Nodes) > 1 {
			amqpURL = p.clusterURL(s)
		}
		env = append(env, "AMQP_URL="+amqpURL, "MYSQL_DSN="+p.DB.serviceDSN(s.Database, s.password), "QUEUE_TYPE="+p.cfg.QueueType)
	}
	env = append(env, s.Env()...)

	s.mu.Lock()
	s.started++
	n := s.started
	s.mu.Unlock()
	logPath := filepath.Join(p.logs, fmt.Sprintf("%s.%d.log", s.Dir, n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(p.bin, s.Dir))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", s.Dir, err)
	}
	in := &Instance{Service: s, N: n, Addr: addr, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(in.done)
	}()
	s.mu.Lock()
	s.insts = append(s.insts, in)
	s.mu.Unlock()
	return in, nil
}

// String names the instance: orders#2 (127.0.0.1:1234).
func (in *Instance) String() string {
	return fmt.Sprintf("%s#%d (%s)", in.Service.Dir, in.N, in.Addr)
}

// URL is the instance's own base URL.
func (in *Instance) URL() string { return "http://" + in.Addr }

// Pid is the instance's process id.
func (in *Instance) Pid() int { return in.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (in *Instance) Exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// Killed reports whether Kill or Stop was called: an instance that exited
// without it died on its own.
func (in *Instance) Killed() bool { return in.ended.Load() }

// Kill sends SIGKILL and returns once the process is gone.
func (in *Instance) Kill() error {
	in.ended.Store(true)
	if in.Exited() {
		return nil
	}
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-in.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s survived SIGKILL", in)
	}
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns an error unless the process exited with status 0
// within grace.
func (in *Instance) Stop(grace time.Duration) error {
	in.ended.Store(true)
	if in.Exited() {
		return nil
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		if code := in.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with status %d after SIGTERM (log %s):\n%s", in, code, in.Log, tailFile(in.Log, 10))
		}
		return nil
	case <-time.After(grace):
		_ = in.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM (log %s)", in, grace, in.Log)
	}
}

// WaitHealthy polls GET /health until it answers 200, the process exits, or
// within passes.
func (in *Instance) WaitHealthy(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.URL()+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if in.Exited() {
			return fmt.Errorf("%s exited during start (log %s):\n%s", in, in.Log, tailFile(in.Log, 20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not healthy after %v: %s (log %s):\n%s", in, within, last, in.Log, tailFile(in.Log, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePorts returns n distinct free ports on 127.0.0.1 below 32768 (the
// kernel's ephemeral range starts there; the RabbitMQ CLI uses the
// distribution port + 10000), never two adjacent ones.
func freePorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 2000 {
			return nil, errors.New("platform: no free ports in 20000-32767")
		}
		p := 20000 + mrand.IntN(12768)
		if seen[p] || seen[p-1] || seen[p+1] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		seen[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Tail returns the last n lines of the instance's log.
func (in *Instance) Tail(n int) string { return tailFile(in.Log, n) }
