package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// platformService is one line of scripts/services.conf, running.
type platformService struct {
	dir    string // services/<dir>
	name   string // queue and app_id; "-" for the gateway
	url    string // http://127.0.0.1:<port>
	dbName string // its fresh database ("" for the gateway)
	db     *sqlx.DB
	cmd    *exec.Cmd
	done   chan struct{}
	log    string
}

// platform is one instance of Sagittarius started for the benchmark: every
// service of scripts/services.conf built from the working tree and run as a
// process on a free port, each with a fresh database, all in a fresh vhost,
// the gateway last (the approach of services/e2e). It never uses the ports of
// a running scripts/up.
type platform struct {
	services []*platformService // in services.conf order, gateway included
	gateway  *platformService
	vhostURL string // admin AMQP URL of the vhost
	vhost    string
	admin    *sqlx.DB // admin connection without database
	cleanup  []func()
}

func (p *platform) service(dir string) *platformService {
	for _, s := range p.services {
		if s.dir == dir {
			return s
		}
	}
	return nil
}

// withQueue returns the services that have a queue and a database.
func (p *platform) withQueue() []*platformService {
	var out []*platformService
	for _, s := range p.services {
		if s.name != "-" {
			out = append(out, s)
		}
	}
	return out
}

// readServicesConf reads scripts/services.conf: dir, name.
func readServicesConf(root string) ([][2]string, error) {
	f, err := os.Open(filepath.Join(root, "scripts", "services.conf"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		out = append(out, [2]string{fields[0], fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("scripts/services.conf lists no service")
	}
	return out, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPlatform builds and starts the platform and waits until every /health
// answers 200. stop (also on error) ends the processes with SIGTERM and drops
// the databases and the vhost.
func startPlatform(ctx context.Context, cfg config) (*platform, error) {
	p := &platform{}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	conf, err := readServicesConf(cfg.root)
	if err != nil {
		return nil, fmt.Errorf("services.conf: %w", err)
	}
	bin, err := os.MkdirTemp("", "sagittarius-bench-")
	if err != nil {
		return nil, err
	}
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(bin) })
	args := []string{"build", "-o", bin + string(os.PathSeparator)}
	for _, c := range conf {
		args = append(args, "./services/"+c[0])
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = cfg.root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}

	vhostURL, dropVhost, err := newVhost(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("vhost: %w", err)
	}
	p.cleanup = append(p.cleanup, dropVhost)
	p.vhostURL = vhostURL
	if u, err := url.Parse(vhostURL); err == nil {
		p.vhost = strings.TrimPrefix(u.Path, "/")
	}
	if err := declareExchange(vhostURL); err != nil {
		return nil, err
	}
	p.admin, err = sqlx.Open("mysql", cfg.mysqlDSN)
	if err != nil {
		return nil, err
	}
	p.cleanup = append(p.cleanup, func() { p.admin.Close() })
	dsn, err := mysql.ParseDSN(cfg.mysqlDSN)
	if err != nil {
		return nil, err
	}
	prefix := "bench_" + randomSuffix() + "_"
	serviceDSN := *dsn
	for _, c := range conf {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &platformService{dir: c[0], name: c[1], url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
		p.services = append(p.services, s)
		if s.name == "-" {
			p.gateway = s
			continue
		}
		s.dbName = prefix + strings.ReplaceAll(s.dir, "-", "_")
		if _, err := p.admin.ExecContext(ctx, "CREATE DATABASE `"+s.dbName+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
			return nil, fmt.Errorf("create database: %w", err)
		}
		name := s.dbName
		p.cleanup = append(p.cleanup, func() {
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = p.admin.ExecContext(c, "DROP DATABASE IF EXISTS `"+name+"`")
		})
		d := *dsn
		d.DBName = s.dbName
		d.InterpolateParams = true // the watcher's queries: one round trip each, no prepared statements
		if s.db, err = sqlx.Open("mysql", d.FormatDSN()); err != nil {
			return nil, err
		}
		s.db.SetMaxOpenConns(4)
		db := s.db
		p.cleanup = append(p.cleanup, func() { db.Close() })
	}
	if p.gateway == nil {
		return nil, errors.New("services.conf lists no gateway (a service named -)")
	}

	logDir, err := os.MkdirTemp("", "sagittarius-bench-logs-")
	if err != nil {
		return nil, err
	}
	if cfg.keepLogs {
		fmt.Fprintf(cfg.out, "  service logs: %s (kept)\n", logDir)
	} else {
		p.cleanup = append(p.cleanup, func() { os.RemoveAll(logDir) })
	}
	var upstreams []string
	for _, s := range p.withQueue() {
		d := serviceDSN
		d.DBName = s.dbName
		env := []string{"HTTP_ADDR=" + strings.TrimPrefix(s.url, "http://"), "PUBLIC_BASE_URL=" + p.gateway.url,
			"AMQP_URL=" + vhostURL, "MYSQL_DSN=" + d.FormatDSN(), "QUEUE_TYPE=classic"}
		if err := p.start(cfg, s, bin, logDir, env); err != nil {
			return nil, err
		}
		upstreams = append(upstreams, "UPSTREAM_"+strings.ToUpper(s.dir)+"="+s.url)
	}
	env := append([]string{"HTTP_ADDR=" + strings.TrimPrefix(p.gateway.url, "http://"), "PUBLIC_BASE_URL=" + p.gateway.url}, upstreams...)
	if err := p.start(cfg, p.gateway, bin, logDir, env); err != nil {
		return nil, err
	}

	deadline := time.Now().Add(90 * time.Second)
	for _, s := range p.services {
		for {
			res, err := http.Get(s.url + "/health")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if s.exited() {
				return nil, fmt.Errorf("%s exited during start:\n%s", s.dir, tailFile(s.log, 30))
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s not healthy after 90 s:\n%s", s.dir, tailFile(s.log, 30))
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	ok = true
	return p, nil
}

func (p *platform) start(cfg config, s *platformService, bin, logDir string, env []string) error {
	s.log = filepath.Join(logDir, s.dir+".log")
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, s.dir))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Env = append(cmd.Env, cfg.serviceEnv...)
	if cfg.pprofBase > 0 {
		// PPROF_ADDR is read by services that offer profiling; the others ignore it.
		cmd.Env = append(cmd.Env, fmt.Sprintf("PPROF_ADDR=127.0.0.1:%d", cfg.pprofBase+p.index(s)))
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", s.dir, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(s.done)
	}()
	return nil
}

func (p *platform) index(s *platformService) int {
	for i, x := range p.services {
		if x == s {
			return i
		}
	}
	return 0
}

func (s *platformService) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the processes (SIGTERM, SIGKILL after 20 s) and removes what
// startPlatform created, in reverse order. It returns the services that
// had exited before being asked to.
func (p *platform) stop() []string {
	var crashed []string
	for _, s := range p.services {
		if s.cmd == nil {
			continue
		}
		if s.exited() {
			crashed = append(crashed, s.dir+":\n"+tailFile(s.log, 20))
			continue
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range p.services {
		if s.cmd == nil {
			continue
		}
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	for i := len(p.cleanup) - 1; i >= 0; i-- {
		p.cleanup[i]()
	}
	p.cleanup = nil
	return crashed
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func declareExchange(vhostURL string) error {
	conn, err := amqp.Dial(vhostURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return ch.ExchangeDeclare(eventbus.Exchange, amqp.ExchangeFanout, true, false, false, false, nil)
}

// rssKB returns a process's resident set size (VmRSS of /proc/<pid>/status).
func rssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// memory tracks each service's RSS: at rest (one snapshot) and the peak
// under load (sampled while a load phase runs).
type memory struct {
	mu   sync.Mutex
	rest map[string]int64
	peak map[string]int64
}

func newMemory() *memory {
	return &memory{rest: map[string]int64{}, peak: map[string]int64{}}
}

// snapshotRest records every service's RSS now.
func (m *memory) snapshotRest(p *platform) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range p.services {
		if kb, err := rssKB(s.cmd.Process.Pid); err == nil {
			m.rest[s.dir] = kb
		}
	}
}

// sampleWhile samples every service's RSS every 100 ms until the returned
// function is called, keeping the peak.
func (m *memory) sampleWhile(p *platform) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			m.mu.Lock()
			for _, s := range p.services {
				if kb, err := rssKB(s.cmd.Process.Pid); err == nil && kb > m.peak[s.dir] {
					m.peak[s.dir] = kb
				}
			}
			m.mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// queueDepths returns the messages ready in each main queue of the
// platform (AMQP passive declare: exact, unlike the management API's
// sampled statistics).
func (p *platform) queueDepths() (map[string]int, error) {
	conn, err := amqp.Dial(p.vhostURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range p.withQueue() {
		q, err := ch.QueueDeclarePassive(s.name, true, false, false, false, amqp.Table{"x-queue-type": "classic"})
		if err != nil {
			return nil, err
		}
		out[s.name] = q.Messages
	}
	return out, nil
}

// cpuTicks returns the CPU time a process used so far (utime + stime of
// /proc/<pid>/stat), in clock ticks (1/100 s on Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat")
	}
	return u + s, nil
}

// listenerPID returns the process listening on 127.0.0.1:port (or any
// address), found through /proc/net/tcp and the processes' open sockets,
// or 0 when it cannot be found (e.g. not allowed to look).
func listenerPID(port int) int {
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
				return pid
			}
		}
	}
	return 0
}

// cpuMeter reads the CPU time of the platform's processes and of the
// broker and database servers (server-wide: they also serve whatever else
// runs on them).
type cpuMeter struct {
	names []string
	pids  []int
}

func newCPUMeter(cfg config, p *platform) *cpuMeter {
	m := &cpuMeter{}
	for _, s := range p.services {
		m.names, m.pids = append(m.names, s.dir), append(m.pids, s.cmd.Process.Pid)
	}
	if d, err := mysql.ParseDSN(cfg.mysqlDSN); err == nil {
		if _, port, err := net.SplitHostPort(d.Addr); err == nil {
			if n, _ := strconv.Atoi(port); n > 0 {
				if pid := listenerPID(n); pid > 0 {
					m.names, m.pids = append(m.names, "MariaDB*"), append(m.pids, pid)
				}
			}
		}
	}
	if u, err := url.Parse(cfg.amqpURL); err == nil {
		port := 5672
		if n, err := strconv.Atoi(u.Port()); err == nil {
			port = n
		}
		if pid := listenerPID(port); pid > 0 {
			m.names, m.pids = append(m.names, "RabbitMQ*"), append(m.pids, pid)
		}
	}
	return m
}

// read returns every process's CPU ticks now (-1 when unreadable).
func (m *cpuMeter) read() []int64 {
	out := make([]int64, len(m.pids))
	for i, pid := range m.pids {
		t, err := cpuTicks(pid)
		if err != nil {
			t = -1
		}
		out[i] = t
	}
	return out
}

// machineTicks returns the busy CPU time of the whole machine (all CPUs, not
// idle nor iowait) from /proc/stat, in clock ticks, or 0.
func machineTicks() int64 { return readCPUStat().busy }

// cpuStat is the machine's CPU time so far, in clock ticks, from /proc/stat.
type cpuStat struct {
	busy  int64 // everything but idle and iowait
	procs int64 // user, nice and system: the time processes are charged with
	steal int64 // taken by the hypervisor for other guests
}

func readCPUStat() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuStat{}
	}
	var st cpuStat
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch {
		case i == 3 || i == 4: // idle, iowait
			continue
		case i <= 2: // user, nice, system
			st.procs += n
		case i == 7:
			st.steal += n
		}
		st.busy += n
	}
	return st
}

func (a cpuStat) sub(b cpuStat) cpuStat {
	return cpuStat{busy: a.busy - b.busy, procs: a.procs - b.procs, steal: a.steal - b.steal}
}
