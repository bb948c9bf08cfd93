package platform

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// MariaDB is a MariaDB server run as a child process with its own data
// folder, socket and port (on 127.0.0.1), configured like scripts/infra-up's.
// It dies with the process that started it. Its methods are safe for
// concurrent use but serialised.
type MariaDB struct {
	Port int
	dir  string // data folder root: data/, mariadb.sock, mariadb.log

	// admin is the administrator of a server that is not the platform's own
	// (attachMariaDB); nil for the platform's own.
	admin *mysql.Config
	// userHost is the host part of the services' users: where they connect from.
	userHost string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newMariaDB(dir string, port int) *MariaDB {
	return &MariaDB{Port: port, dir: dir, userHost: "127.0.0.1"}
}

// attachMariaDB returns a MariaDB for a server that already runs, reached as
// the administrator of dsn. It cannot be started, killed nor stopped.
func attachMariaDB(dsn string) (*MariaDB, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("platform: MySQL DSN: %w", err)
	}
	m := &MariaDB{admin: c, userHost: "%"}
	if host, port, err := net.SplitHostPort(c.Addr); err == nil && c.Net == "tcp" {
		m.Port, _ = strconv.Atoi(port)
		if host == "127.0.0.1" {
			m.userHost = host
		}
	}
	return m, nil
}

// serviceDSN is the DSN of a service's user (named as its database) on its
// database, as the service reaches the server.
func (m *MariaDB) serviceDSN(database, password string) string {
	c := mysql.NewConfig()
	if m.admin != nil {
		c = m.admin.Clone()
	} else {
		c.Net, c.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
	}
	c.User, c.Passwd, c.DBName = database, password, database
	c.ParseTime, c.Loc = true, time.UTC
	return c.FormatDSN()
}

func (m *MariaDB) socket() string  { return filepath.Join(m.dir, "mariadb.sock") }
func (m *MariaDB) LogPath() string { return filepath.Join(m.dir, "mariadb.log") }

// RootDSN is the DSN of root over the socket (no password: the server is
// private to this platform), or of the administrator of a server that is not
// the platform's own, for database, or none when database is "".
func (m *MariaDB) RootDSN(database string) string {
	if m.admin != nil {
		c := m.admin.Clone()
		c.DBName = database
		c.ParseTime, c.Loc = true, time.UTC
		return c.FormatDSN()
	}
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "unix"
	c.Addr = m.socket()
	c.DBName = database
	c.ParseTime = true
	c.Loc = time.UTC
	return c.FormatDSN()
}

// Start creates the data folder on first use, starts the server unless it
// runs, and returns once it answers.
func (m *MariaDB) Start(ctx context.Context) error {
	if m.admin != nil {
		return errNotOwn
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running() {
		return nil
	}
	data := filepath.Join(m.dir, "data")
	var userOpt []string
	if os.Geteuid() == 0 {
		userOpt = []string{"--user=root"}
	}
	if _, err := os.Stat(filepath.Join(data, "mysql")); err != nil {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, userOpt...)
		if out, err := exec.CommandContext(ctx, "mariadb-install-db", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mariadb-install-db: %v\n%s", err, tailBytes(out, 2000))
		}
	}
	log, err := os.OpenFile(m.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + m.socket(),
		"--port=" + strconv.Itoa(m.Port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(m.dir, "mariadb.pid"), "--log-error=" + m.LogPath(),
		"--max-connections=500", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
		"--default-time-zone=+00:00", "--innodb-print-all-deadlocks=ON", // deadlocks are logged in mariadb.log
		"--sql-mode=ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
	}, userOpt...)
	cmd := exec.Command(mariadbd(), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done

	db, err := sql.Open("mysql", m.RootDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mariadbd exited during start-up (log: %s):\n%s", m.LogPath(), tailFile(m.LogPath(), 15))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("mariadbd does not answer: %v (log: %s)", err, m.LogPath())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the server and returns once it is gone: clients see
// their connections reset, and nothing is flushed that was not already.
func (m *MariaDB) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running() {
		return nil
	}
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("mariadbd (pid %d) survived SIGKILL", m.cmd.Process.Pid)
	}
}

// Running reports whether the server process is alive.
func (m *MariaDB) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running()
}

func (m *MariaDB) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// mariadbd finds the server binary, which Debian puts in /usr/sbin.
func mariadbd() string {
	if p, err := exec.LookPath("mariadbd"); err == nil {
		return p
	}
	return "/usr/sbin/mariadbd"
}

// openRoot opens a pool as root on database (none when "").
func (m *MariaDB) openRoot(database string) (*sqlx.DB, error) {
	db, err := sqlx.Open("mysql", m.RootDSN(database))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxLifetime(time.Minute)
	return db, nil
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tailLines(string(b), lines)
}

func tailLines(s string, n int) string {
	end := len(s)
	for end > 0 && s[end-1] == '\n' {
		end--
	}
	i := end
	for ; i > 0 && n > 0; i-- {
		if s[i-1] == '\n' {
			n--
			if n == 0 {
				break
			}
		}
	}
	return s[i:end]
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
