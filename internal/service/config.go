package service

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Environment variables read by ConfigFrom.
const (
	EnvHTTPAddr       = "HTTP_ADDR"
	EnvAMQPURL        = "AMQP_URL"
	EnvMySQLDSN       = "MYSQL_DSN"
	EnvPublicBaseURL  = "PUBLIC_BASE_URL"
	EnvQueueType      = "QUEUE_TYPE"
	EnvPprofAddr      = "PPROF_ADDR"
	EnvShutdownGrace  = "SHUTDOWN_GRACE"
	EnvOpenTimeout    = "MYSQL_OPEN_TIMEOUT"
	EnvPrintContracts = "SAGITTARIUS_PRINT_CONTRACTS"
	// EnvFailedMessagesAllowEdit (1) lets operators edit a failed message's
	// payload before a retry (internal/failedmsg); off by default.
	EnvFailedMessagesAllowEdit = "FAILED_MESSAGES_ALLOW_EDIT"
	// EnvAMQPCAFile and EnvMySQLCAFile name PEM files of the certificate
	// authorities trusted for the broker's (amqps://) and the database's
	// (DSN tls=true) certificates; empty: the system's (scripts/up --tls).
	EnvAMQPCAFile  = "AMQP_CA_FILE"
	EnvMySQLCAFile = "MYSQL_CA_FILE"
)

// Defaults of the settings that have one.
const (
	DefaultPublicBaseURL = "http://127.0.0.1:8080" // the gateway of scripts/up
	DefaultShutdownGrace = 10 * time.Second
	DefaultOpenTimeout   = 60 * time.Second
)

// Config is the configuration every service process shares, read from the
// environment by ConfigFrom and checked by Validate. A later concern that
// every service needs (an OIDC issuer, an OpenTelemetry endpoint) is one
// field here, one line in ConfigFrom and one check in Validate.
type Config struct {
	HTTPAddr      string             // HTTP_ADDR: host:port to serve on; default Spec.Addr
	AMQPURL       string             // AMQP_URL: the broker; required by a service with a bus
	MySQLDSN      string             // MYSQL_DSN: its database (go-sql-driver DSN); required by a service with a bus
	PublicBaseURL string             // PUBLIC_BASE_URL: the gateway, base of every link; default DefaultPublicBaseURL
	QueueType     eventbus.QueueType // QUEUE_TYPE: classic (default) or quorum
	PprofAddr     string             // PPROF_ADDR: if set, Go profiles on this loopback address; off by default
	ShutdownGrace time.Duration      // SHUTDOWN_GRACE: how long requests in flight may take at shutdown; default 10s
	OpenTimeout   time.Duration      // MYSQL_OPEN_TIMEOUT: how long to wait for the database at start; default 60s
	// Auth configures the access-token verifier (OIDC_ISSUER, OIDC_AUDIENCE
	// and the other OIDC_* variables of auth.ConfigFromEnv). Every service
	// needs an issuer, unless its wiring sets Process.Verifier itself (the
	// identity service verifies its own tokens in process).
	Auth auth.Config
	// PrintContracts (SAGITTARIUS_PRINT_CONTRACTS=1): write the service's
	// manifests to stdout and exit, connecting to nothing (see Run).
	PrintContracts bool
	// FailedMessagesAllowEdit (FAILED_MESSAGES_ALLOW_EDIT=1): operators may
	// replace a failed message's payload before retrying it. Off by default.
	FailedMessagesAllowEdit bool
	AMQPCAFile              string // AMQP_CA_FILE: CAs of the broker's certificate (amqps://)
	MySQLCAFile             string // MYSQL_CA_FILE: CAs of the database's certificate

	infra bool    // the service has a bus and a database: AMQP_URL and MYSQL_DSN are required
	errs  []error // values ConfigFrom could not parse
}

// ConfigFrom reads the configuration of the service spec from getenv,
// applying defaults. Unparsable values are reported by Validate.
func ConfigFrom(getenv func(string) string, spec Spec) Config {
	c := Config{
		HTTPAddr:                getenv(EnvHTTPAddr),
		AMQPURL:                 getenv(EnvAMQPURL),
		MySQLDSN:                getenv(EnvMySQLDSN),
		PublicBaseURL:           getenv(EnvPublicBaseURL),
		QueueType:               eventbus.QueueType(getenv(EnvQueueType)),
		PprofAddr:               getenv(EnvPprofAddr),
		ShutdownGrace:           DefaultShutdownGrace,
		OpenTimeout:             DefaultOpenTimeout,
		PrintContracts:          getenv(EnvPrintContracts) == "1",
		FailedMessagesAllowEdit: getenv(EnvFailedMessagesAllowEdit) == "1",
		AMQPCAFile:              getenv(EnvAMQPCAFile),
		MySQLCAFile:             getenv(EnvMySQLCAFile),
		infra:                   spec.Name != "",
	}
	var err error
	if c.Auth, err = auth.ConfigFromEnv(getenv); err != nil {
		c.errs = append(c.errs, err)
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = spec.Addr
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = DefaultPublicBaseURL
	}
	if c.QueueType == "" {
		c.QueueType = eventbus.QueueClassic
	}
	c.ShutdownGrace = c.duration(getenv, EnvShutdownGrace, c.ShutdownGrace)
	c.OpenTimeout = c.duration(getenv, EnvOpenTimeout, c.OpenTimeout)
	return c
}

func (c *Config) duration(getenv func(string) string, key string, def time.Duration) time.Duration {
	v := getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		c.errs = append(c.errs, fmt.Errorf("%s %q: want a positive duration such as 10s", key, v))
		return def
	}
	return d
}

// Validate reports every missing or invalid setting, each naming its
// environment variable. AMQP_URL and MYSQL_DSN are required only by a
// service with a bus, and not when printing contracts.
func (c Config) Validate() error {
	errs := append([]error(nil), c.errs...)
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: %w", EnvHTTPAddr, c.HTTPAddr, err))
	}
	if _, err := hal.NewBase(c.PublicBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvPublicBaseURL, err))
	}
	if c.infra && !c.PrintContracts {
		if c.AMQPURL == "" {
			errs = append(errs, errors.New(EnvAMQPURL+" is required"))
		}
		if c.MySQLDSN == "" {
			errs = append(errs, errors.New(EnvMySQLDSN+" is required"))
		} else if _, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvMySQLDSN, err))
		}
		if c.QueueType != eventbus.QueueClassic && c.QueueType != eventbus.QueueQuorum {
			errs = append(errs, fmt.Errorf("%s %q: want classic or quorum", EnvQueueType, c.QueueType))
		}
	}
	return errors.Join(errs...)
}
