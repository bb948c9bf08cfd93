package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	sagplatform "github.com/sagittarius-a/sagittarius/internal/platform"
)

// platformService is one line of scripts/services.conf, running.
type platformService struct {
	dir  string   // services/<dir>
	name string   // queue and app_id; "-" for the gateway
	url  string   // http://127.0.0.1:<port>
	db   *sqlx.DB // its database, as the administrator (nil for the gateway)
	svc  *sagplatform.Service
}

// pid is the process id of the service's instance.
func (s *platformService) pid() int { return s.svc.Primary().Pid() }

// platform is one instance of Sagittarius started for the benchmark with
// internal/platform on the servers of scripts/bench: every service of
// scripts/services.conf built from the working tree and run as a process on
// a free port, each with a fresh database, all in a fresh vhost, the gateway
// last. It never uses the ports of a running scripts/up.
type platform struct {
	services []*platformService // in services.conf order, gateway included
	gateway  *platformService
	vhostURL string   // admin AMQP URL of the vhost
	admin    *sqlx.DB // admin connection without database
	p        *sagplatform.Platform
	dir      string
	keepLogs bool
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

// startPlatform builds and starts the platform and waits until every /health
// answers 200. stop ends the processes with SIGTERM and drops the databases
// and the vhost.
func startPlatform(ctx context.Context, cfg config) (*platform, error) {
	lines, err := sagplatform.ReadServices(cfg.root)
	if err != nil {
		return nil, err
	}
	env := map[string][]string{}
	for i, l := range lines {
		env[l.Dir] = append([]string(nil), cfg.serviceEnv...)
		if l.Name == "-" { // the gateway: rate limits on, too high to refuse the benchmark's clients (gateway.go)
			env[l.Dir] = append(gatewayLimitsOn, env[l.Dir]...)
		}
		if cfg.pprofBase > 0 {
			// PPROF_ADDR is read by services that offer profiling; the others ignore it.
			env[l.Dir] = append(env[l.Dir], fmt.Sprintf("PPROF_ADDR=127.0.0.1:%d", cfg.pprofBase+i))
		}
	}
	dir, err := os.MkdirTemp("", "sagittarius-bench-")
	if err != nil {
		return nil, err
	}
	p := &platform{dir: dir, keepLogs: cfg.keepLogs}
	p.p, err = sagplatform.Start(ctx, sagplatform.Config{Root: cfg.root, Dir: dir, Env: env,
		Servers: &sagplatform.Servers{AMQPURL: cfg.amqpURL, RabbitAPI: cfg.apiURL, MySQLDSN: cfg.mysqlDSN}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	if cfg.keepLogs {
		fmt.Fprintf(cfg.out, "  service logs: %s (kept)\n", p.p.LogDir())
	}
	p.vhostURL = p.p.AdminAMQPURL()
	if p.admin, err = sqlx.Open("mysql", cfg.mysqlDSN); err != nil {
		return nil, err
	}
	for _, svc := range p.p.All() {
		s := &platformService{dir: svc.Dir, name: svc.Name, url: svc.Primary().URL(), svc: svc}
		p.services = append(p.services, s)
		if s.name == "-" {
			p.gateway = s
			continue
		}
		d, err := mysql.ParseDSN(p.p.DB.RootDSN(svc.Database))
		if err != nil {
			return nil, err
		}
		d.InterpolateParams = true // the watcher's queries: one round trip each, no prepared statements
		if s.db, err = sqlx.Open("mysql", d.FormatDSN()); err != nil {
			return nil, err
		}
		s.db.SetMaxOpenConns(4)
	}
	ok = true
	return p, nil
}

// stop ends the processes (SIGTERM, SIGKILL after 20 s) and removes what
// startPlatform created. It returns the services that had exited before
// being asked to, and those that did not stop cleanly.
func (p *platform) stop() []string {
	var crashed []string
	for _, in := range p.p.Crashed() {
		crashed = append(crashed, in.String()+":\n"+in.Tail(20))
	}
	for _, s := range p.services {
		if s.db != nil {
			s.db.Close()
		}
	}
	if p.admin != nil {
		p.admin.Close()
	}
	if err := p.p.Close(); err != nil {
		crashed = append(crashed, err.Error())
	}
	if p.keepLogs {
		os.RemoveAll(filepath.Join(p.dir, "bin"))
	} else {
		os.RemoveAll(p.dir)
	}
	return crashed
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
		if kb, err := rssKB(s.pid()); err == nil {
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
				if kb, err := rssKB(s.pid()); err == nil && kb > m.peak[s.dir] {
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
		m.names, m.pids = append(m.names, s.dir), append(m.pids, s.pid())
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
