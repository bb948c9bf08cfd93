package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// service is one line of scripts/services.conf.
type service struct {
	dir  string // services/<dir>, also the gateway prefix and UPSTREAM_<DIR>
	name string // queue and app_id; "-" for the gateway
}

// readServices reads scripts/services.conf.
func readServices(t *testing.T, root string) []service {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "scripts", "services.conf"))
	if err != nil {
		t.Fatalf("list of services: %v", err)
	}
	defer f.Close()
	var out []service
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		out = append(out, service{dir: fields[0], name: fields[1]})
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("scripts/services.conf: %v (%d services)", err, len(out))
	}
	return out
}

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

// buildAll compiles every service once per test binary into a temporary
// directory and returns it. Under -race the services are built with -race.
func buildAll(t *testing.T, root string, services []service) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sagittarius-e2e-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + string(os.PathSeparator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		for _, s := range services {
			args = append(args, "./services/"+s.dir)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Cluster is every service and the gateway running as processes.
type Cluster struct {
	Gateway string            // http://127.0.0.1:<port>, also PUBLIC_BASE_URL
	Direct  map[string]string // dir -> http://127.0.0.1:<port> of the service itself
	AMQPURL string            // admin URL of the test vhost
	Vhost   string
	Queues  []string // the services' main queues
	procs   []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startCluster builds and starts everything on free ports, each service with
// a fresh database, all in a fresh vhost, and waits until every /health is
// 200. Everything is stopped (SIGTERM, then SIGKILL after 20 s) and removed
// when the test ends; on failure the end of each service's log is printed.
// extraEnv (NAME=value) is added to every process's environment.
func startCluster(t *testing.T, extraEnv ...string) *Cluster {
	t.Helper()
	env := testinfra.RequireInfra(t)
	services := readServices(t, env.Root)
	bin := buildAll(t, env.Root, services)
	amqpURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)

	c := &Cluster{Direct: map[string]string{}, AMQPURL: amqpURL, Vhost: vhost}
	ports := map[string]int{}
	for _, s := range services {
		ports[s.dir] = freePort(t)
	}
	c.Gateway = fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"])
	logDir := t.TempDir()
	dsns := map[string]string{}
	for _, s := range services {
		if s.name != "-" {
			dsns[s.dir] = testinfra.NewDatabaseDSN(t)
		}
	}
	// Registered after the databases and the vhost, so it runs before their
	// removal (cleanups run last-in first-out).
	t.Cleanup(func() { c.stop(t) })

	var upstreams []string
	for _, s := range services {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[s.dir])
		vars := append([]string{"HTTP_ADDR=" + addr, "PUBLIC_BASE_URL=" + c.Gateway}, extraEnv...)
		if s.name == "-" {
			continue
		}
		c.Direct[s.dir] = "http://" + addr
		c.Queues = append(c.Queues, s.name)
		upstreams = append(upstreams, "UPSTREAM_"+strings.ToUpper(s.dir)+"=http://"+addr)
		vars = append(vars, "AMQP_URL="+amqpURL, "MYSQL_DSN="+dsns[s.dir], "QUEUE_TYPE=classic")
		c.start(t, bin, s.dir, logDir, vars)
	}
	for _, s := range services {
		if s.name == "-" {
			vars := append([]string{"HTTP_ADDR=" + fmt.Sprintf("127.0.0.1:%d", ports[s.dir]), "PUBLIC_BASE_URL=" + c.Gateway}, upstreams...)
			vars = append(vars, extraEnv...)
			c.start(t, bin, s.dir, logDir, vars)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, s := range services {
		url := fmt.Sprintf("http://127.0.0.1:%d/health", ports[s.dir])
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if p := c.proc(s.dir); p.exited() {
				t.Fatalf("%s exited during start:\n%s", s.dir, tail(p.log, 40))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy after 90 s (%v):\n%s", s.dir, err, tail(c.proc(s.dir).log, 40))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

func (c *Cluster) start(t *testing.T, bin, dir, logDir string, vars []string) {
	t.Helper()
	logPath := filepath.Join(logDir, dir+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, dir))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", dir, err)
	}
	p := &proc{name: dir, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
}

func (c *Cluster) proc(dir string) *proc {
	for _, p := range c.procs {
		if p.name == dir {
			return p
		}
	}
	return nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends every process the cluster started: SIGTERM, and SIGKILL for one
// still running 20 s later. A service that exited before stop was asked is
// reported, as is one that did not stop gracefully.
func (c *Cluster) stop(t *testing.T) {
	for _, p := range c.procs {
		if p.exited() {
			t.Errorf("%s had exited before the end of the test:\n%s", p.name, tail(p.log, 40))
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 && !t.Failed() {
				t.Errorf("%s exited with %d after SIGTERM:\n%s", p.name, code, tail(p.log, 20))
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
		}
		if t.Failed() {
			t.Logf("--- end of %s log:\n%s", p.name, tail(p.log, 15))
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
