package testinfra

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestCA is a throw-away certificate authority with one server certificate
// for 127.0.0.1 and localhost, written as scripts/tls-certs writes them:
// Dir/ca.pem, Dir/server.pem and Dir/server-key.pem (PKCS#8).
type TestCA struct {
	Dir      string
	CAFile   string // the CA certificate (PEM): what clients trust
	CertFile string // the server certificate (PEM)
	KeyFile  string // the server key (PEM, PKCS#8)
}

// NewTestCA makes a CA named name and a server certificate under a new
// temporary folder (readable by user rabbitmq: a node copies them).
func NewTestCA(t testing.TB, name string) *TestCA {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	ca := &TestCA{Dir: dir, CAFile: filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{ca.CAFile, "CERTIFICATE", caDER}, {ca.CertFile, "CERTIFICATE", der}, {ca.KeyFile, "PRIVATE KEY", pk}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// StartRabbitNodeTLS starts a throw-away node like StartRabbitNode, with a
// TLS listener too (scripts/rabbit-node --tls-port, this repository's
// script) presenting ca's server certificate. It returns the
// administrator's amqps:// URL of vhost "/" and the node (its AMQPURL is
// the plain listener's, APIURL the management API).
func StartRabbitNodeTLS(t testing.TB, ca *TestCA) (amqpsURL string, node *RabbitNode) {
	t.Helper()
	RequireInfra(t)
	script := filepath.Join(sourceRoot(), "scripts", "rabbit-node")
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("StartRabbitNodeTLS: %v", err)
		}
	}
	ports := freePorts(t, 4)
	user, pw := "admin", randomHex(16)
	n := &RabbitNode{
		Name: "sagtls-" + randomHex(4) + "@localhost",
		AMQPURL: (&url.URL{Scheme: "amqp", User: url.UserPassword(user, pw),
			Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Path: "/"}).String(),
		APIURL: (&url.URL{Scheme: "http", User: url.UserPassword(user, pw),
			Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))}).String(),
		Dir:    filepath.Join(tmp, "rabbitmq"),
		t:      t,
		script: script,
		env:    append(os.Environ(), "RABBIT_NODE_DEFAULT_PASS="+pw),
	}
	n.args = []string{
		"--dir", n.Dir, "--node", n.Name,
		"--port", strconv.Itoa(ports[0]), "--dist-port", strconv.Itoa(ports[1]),
		"--management-port", strconv.Itoa(ports[2]),
		"--tls-port", strconv.Itoa(ports[3]), "--tls-dir", ca.Dir,
		"--default-user", user, "--timeout", strconv.Itoa(int(nodeTimeout / time.Second)),
	}
	t.Cleanup(func() {
		if out, err := n.run("purge"); err != nil {
			t.Errorf("stopping RabbitMQ node %s: %v\n%s", n.Name, err, out)
		}
	})
	n.Start(t)
	return (&url.URL{Scheme: "amqps", User: url.UserPassword(user, pw),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3])), Path: "/"}).String(), n
}

// ManagementGetNode is ManagementGet against node's management API.
func ManagementGetNode(t testing.TB, node *RabbitNode, path string, out any) {
	t.Helper()
	managementGetFrom(t, node.APIURL, path, out)
}

// StartMariaDBTLS starts a throw-away MariaDB server (a child process,
// data under t.TempDir(), on a free port of 127.0.0.1) with TLS from ca
// (ssl_ca, ssl_cert, ssl_key) and returns the DSN of a user that may
// connect only over TLS (REQUIRE SSL), without a tls parameter: the caller
// chooses how to connect. The server is killed in t.Cleanup.
func StartMariaDBTLS(t testing.TB, ca *TestCA) (dsn string) {
	t.Helper()
	RequireInfra(t)
	if _, err := exec.LookPath("mariadb-install-db"); err != nil {
		t.Skip("mariadb-install-db not installed")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sock := filepath.Join(dir, "m.sock")
	var userOpt []string
	if os.Geteuid() == 0 {
		userOpt = []string{"--user=root"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, userOpt...)
	if out, err := exec.CommandContext(ctx, "mariadb-install-db", args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePorts(t, 1)[0]
	logPath := filepath.Join(dir, "mariadb.log")
	args = append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + sock, "--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--log-error=" + logPath, "--pid-file=" + filepath.Join(dir, "m.pid"),
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=16M",
		"--ssl-ca=" + ca.CAFile, "--ssl-cert=" + ca.CertFile, "--ssl-key=" + ca.KeyFile}, userOpt...)
	bin := "/usr/sbin/mariadbd"
	if p, err := exec.LookPath("mariadbd"); err == nil {
		bin = p
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })

	root := mysql.NewConfig()
	root.User, root.Net, root.Addr = "root", "unix", sock
	db, err := sql.Open("mysql", root.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(90 * time.Second); ; {
		if err = db.PingContext(ctx); err == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("mariadbd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pw := randomHex(12)
	for _, q := range []string{
		"CREATE DATABASE tlstest",
		fmt.Sprintf("CREATE USER 'tls'@'127.0.0.1' IDENTIFIED BY '%s' REQUIRE SSL", pw),
		"GRANT ALL ON tlstest.* TO 'tls'@'127.0.0.1'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = "tls", pw, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "tlstest"
	return c.FormatDSN()
}
