package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

const repo = "../../.."

func services(t *testing.T) []servicesconf.Service {
	t.Helper()
	svcs, err := servicesconf.ReadFile(filepath.Join(repo, "scripts/services.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return svcs
}

// composeFile is the part of docker-compose.yml the checks read (YAML merge
// keys resolved by the decoder; ${VAR:-default} left as written).
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]any    `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Profiles    []string          `yaml:"profiles"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestComposeRunsEveryServiceOfServicesConf(t *testing.T) {
	c := readCompose(t)
	for _, s := range services(t) {
		svc, ok := c.Services[s.Dir]
		if !ok {
			t.Errorf("docker-compose.yml has no service %s", s.Dir)
			continue
		}
		if len(svc.Profiles) > 0 {
			t.Errorf("%s: runs only in profiles %v", s.Dir, svc.Profiles)
		}
		if svc.Image == "" || svc.Build == nil {
			t.Errorf("%s: image and build (the one image of the Dockerfile) are both needed", s.Dir)
		}
		if want := "/usr/local/bin/" + s.Dir; len(svc.Command) != 1 || svc.Command[0] != want {
			t.Errorf("%s: command %v, want [%s]", s.Dir, svc.Command, want)
		}
		env := svc.Environment
		if want := fmt.Sprintf("0.0.0.0:%d", s.Port); env["HTTP_ADDR"] != want {
			t.Errorf("%s: HTTP_ADDR %q, want %q", s.Dir, env["HTTP_ADDR"], want)
		}
		if want := fmt.Sprintf("http://127.0.0.1:%d/health", s.Port); len(svc.Healthcheck.Test) != 3 ||
			svc.Healthcheck.Test[1] != "/usr/local/bin/httpcheck" || svc.Healthcheck.Test[2] != want {
			t.Errorf("%s: healthcheck %v, want httpcheck %s", s.Dir, svc.Healthcheck.Test, want)
		}
		if !strings.HasPrefix(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}") {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want Jaeger's OTLP/HTTP endpoint by default", s.Dir, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
		if !s.HasBus() {
			var ups []string
			for _, o := range services(t) {
				if o.HasBus() {
					key := "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(o.Dir, "-", "_"))
					want := fmt.Sprintf("http://%s:%d", o.Dir, o.Port)
					if env[key] != want {
						t.Errorf("%s: %s %q, want %q", s.Dir, key, env[key], want)
					}
					ups = append(ups, fmt.Sprintf("%s %s %s", o.Dir, o.Name, want))
				}
			}
			if want := strings.Join(ups, ","); env["UPSTREAMS"] != want {
				t.Errorf("%s: UPSTREAMS %q, want %q", s.Dir, env["UPSTREAMS"], want)
			}
			continue
		}
		urls := strings.Split(env["AMQP_URL"], ",")
		if len(urls) != 3 {
			t.Errorf("%s: AMQP_URL lists %d nodes, want 3 (the cluster profile's)", s.Dir, len(urls))
		}
		pw := "${" + s.PasswordVar() + ":-"
		for i, u := range urls {
			want := fmt.Sprintf("@${AMQP_HOST_%d:-rabbitmq}:5672/sagittarius", i+1)
			if !strings.HasPrefix(u, "amqp://"+s.Name+":"+pw) || !strings.HasSuffix(u, want) {
				t.Errorf("%s: AMQP_URL node %d %q: want amqp://%s:%s...}%s", s.Dir, i+1, u, s.Name, pw, want)
			}
		}
		if dsn := env["MYSQL_DSN"]; !strings.HasPrefix(dsn, s.DBName()+":"+pw) || !strings.Contains(dsn, "@tcp(mysql:3306)/"+s.DBName()+"?parseTime=true&loc=UTC") {
			t.Errorf("%s: MYSQL_DSN %q", s.Dir, dsn)
		}
		if env["QUEUE_TYPE"] != "${QUEUE_TYPE:-classic}" {
			t.Errorf("%s: QUEUE_TYPE %q, want ${QUEUE_TYPE:-classic} (quorum in the cluster profile)", s.Dir, env["QUEUE_TYPE"])
		}
	}
	for _, name := range []string{"rabbitmq", "rabbitmq-2", "rabbitmq-3", "rabbitmq-init", "mysql", "prometheus", "mysqld-exporter", "grafana", "jaeger"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no service %s", name)
		}
	}
	for _, name := range []string{"rabbitmq-2", "rabbitmq-3"} {
		if p := c.Services[name].Profiles; len(p) != 1 || p[0] != "cluster" {
			t.Errorf("%s: profiles %v, want [cluster]", name, p)
		}
	}
}

// The cluster env file turns on the profile, quorum queues, three nodes in
// the provisioning wait, and the two other hosts of AMQP_URL.
func TestClusterEnvFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "deploy/compose/cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	want := map[string]string{"COMPOSE_PROFILES": "cluster", "QUEUE_TYPE": "quorum", "RABBITMQ_NODES": "3",
		"RABBITMQ_CONF": "cluster", "AMQP_HOST_2": "rabbitmq-2", "AMQP_HOST_3": "rabbitmq-3"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("cluster.env: %s=%q, want %q", k, env[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(repo, "deploy/compose/rabbitmq", env["RABBITMQ_CONF"]+".conf")); err != nil {
		t.Error(err)
	}
}

func TestPrometheusScrapesEveryServiceUnderItsDir(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs, labels := map[string][]string{}, map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		if _, dup := jobs[sc.JobName]; dup {
			t.Errorf("job %s twice", sc.JobName)
		}
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
			labels[sc.JobName] = st.Labels["service"]
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				targets = append(targets, fmt.Sprintf("%s:%d", n, d.Port))
			}
		}
		jobs[sc.JobName] = targets
		if sc.MetricsPath != "" && sc.JobName != "rabbitmq-queues" {
			t.Errorf("job %s: metrics_path %s, want the default /metrics", sc.JobName, sc.MetricsPath)
		}
	}
	for _, s := range services(t) {
		want := fmt.Sprintf("%s:%d", s.Dir, s.Port)
		if got := jobs[s.Dir]; len(got) != 1 || got[0] != want {
			t.Errorf("job %s: targets %v, want [%s]", s.Dir, got, want)
		}
		if labels[s.Dir] != "" {
			t.Errorf("job %s: target label service %q: the metrics carry their own service label, which a target label would rename to exported_service", s.Dir, labels[s.Dir])
		}
	}
	if got := strings.Join(jobs["rabbitmq-queues"], " "); got != "rabbitmq:15692 rabbitmq-2:15692 rabbitmq-3:15692" {
		t.Errorf("job rabbitmq-queues: targets %s, want the three nodes' 15692", got)
	}
	if got := strings.Join(jobs["rabbitmq"], " "); got != "rabbitmq:15692 rabbitmq-2:15692 rabbitmq-3:15692" {
		t.Errorf("job rabbitmq: targets %s, want the three nodes' 15692", got)
	}
	if got := jobs["mysqld"]; len(got) != 1 || got[0] != "mysqld-exporter:9104" {
		t.Errorf("job mysqld: targets %v, want [mysqld-exporter:9104]", got)
	}
	if len(cfg.RuleFiles) != 1 || cfg.RuleFiles[0] != "alerts.yml" {
		t.Errorf("rule_files %v, want [alerts.yml] (deploy/prometheus/alerts.yml)", cfg.RuleFiles)
	}
}
