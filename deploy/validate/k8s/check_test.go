package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

const repo = "../../.."

// render runs `kubectl kustomize` on an overlay of deploy/k8s. The production
// overlay reads secrets.env, which is never committed: it is rendered from a
// copy of deploy/k8s with secrets.env.example in its place.
func render(t *testing.T, overlay string) string {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not installed: scripts/check-k8s needs it")
	}
	tmp := t.TempDir()
	if err := os.CopyFS(filepath.Join(tmp, "k8s"), os.DirFS(filepath.Join(repo, "deploy/k8s"))); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "k8s/overlays", overlay)
	if b, err := os.ReadFile(filepath.Join(dir, "secrets.env.example")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "secrets.env"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("kubectl", "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", overlay, err, out)
	}
	return string(out)
}

func options(t *testing.T) Options {
	t.Helper()
	svcs, err := servicesconf.ReadFile(filepath.Join(repo, "scripts/services.conf"))
	if err != nil {
		t.Fatal(err)
	}
	crd, err := LoadCRD("crd/rabbitmq.com_rabbitmqclusters.yaml", "v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for key, path := range map[string]string{"services.conf": "scripts/services.conf",
		"mysql-init.sh": "scripts/compose/mysql-init.sh", "rabbitmq-init.sh": "scripts/compose/rabbitmq-init.sh"} {
		b, err := os.ReadFile(filepath.Join(repo, path))
		if err != nil {
			t.Fatal(err)
		}
		files[key] = b
	}
	return Options{Services: svcs, CRDs: map[string]*CRDSchema{crd.APIVersion + "/" + crd.Kind: crd},
		Files: files, ExternalSecrets: DefaultExternalSecrets}
}

func TestEveryOverlayIsValid(t *testing.T) {
	for _, overlay := range []string{"dev", "production"} {
		t.Run(overlay, func(t *testing.T) {
			for _, err := range Check([]byte(render(t, overlay)), options(t)) {
				t.Error(err)
			}
		})
	}
}

// is reports whether the document d is the object of kind and name (a name
// ending in "-" matches a generated name with its hash suffix).
func is(d, kind, name string) bool {
	if !strings.Contains(d, "\nkind: "+kind+"\n") {
		return false
	}
	if strings.HasSuffix(name, "-") {
		return strings.Contains(d, "\n  name: "+name)
	}
	return strings.Contains(d, "\n  name: "+name+"\n")
}

// edit replaces old by new (once) in the document of kind and name.
func edit(t *testing.T, stream, kind, name, old, new string) string {
	t.Helper()
	docs := strings.Split(stream, "\n---\n")
	for i, d := range docs {
		if is(d, kind, name) {
			if !strings.Contains(d, old) {
				t.Fatalf("%s %s has no %q", kind, name, old)
			}
			docs[i] = strings.Replace(d, old, new, 1)
			return strings.Join(docs, "\n---\n")
		}
	}
	t.Fatalf("no %s %s in the manifest", kind, name)
	return ""
}

// drop removes the document of kind and name.
func drop(t *testing.T, stream, kind, name string) string {
	t.Helper()
	docs := strings.Split(stream, "\n---\n")
	for i, d := range docs {
		if is(d, kind, name) {
			return strings.Join(append(docs[:i:i], docs[i+1:]...), "\n---\n")
		}
	}
	t.Fatalf("no %s %s in the manifest", kind, name)
	return ""
}

// Every broken manifest must fail, with a problem that says what is wrong.
func TestBrokenManifestsFail(t *testing.T) {
	good := render(t, "dev")
	opt := options(t)
	cases := []struct {
		name, want string
		broken     func() string
		opt        func(Options) Options
	}{
		{"unknown field in a Deployment", `unknown field "revisionHistoryLimt"`,
			func() string {
				return edit(t, good, "Deployment", "orders", "revisionHistoryLimit: 5", "revisionHistoryLimt: 5")
			}, nil},
		{"unknown field in a container", `unknown field "readinesProbe"`,
			func() string { return edit(t, good, "Deployment", "catalog", "readinessProbe:", "readinesProbe:") }, nil},
		{"wrong type", "containerPort",
			func() string {
				return edit(t, good, "Deployment", "orders", "containerPort: 8083", `containerPort: "eighty-eighty-three"`)
			}, nil},
		{"duplicate key", `key "type" already set`,
			func() string {
				return edit(t, good, "Service", "orders", "  selector:\n", "  type: ClusterIP\n  type: NodePort\n  selector:\n")
			}, nil},
		{"kind not allowed", "not a kind these manifests may hold",
			func() string {
				return good + "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\n  namespace: sagittarius-dev\nspec:\n  containers: []\n"
			}, nil},
		{"unknown field in the RabbitmqCluster", "additional properties 'replica' not allowed",
			func() string {
				return edit(t, good, "RabbitmqCluster", "sagittarius-rabbitmq", "replicas: 3", "replica: 3")
			}, nil},
		{"wrong type in the RabbitmqCluster", "/spec/replicas",
			func() string {
				return edit(t, good, "RabbitmqCluster", "sagittarius-rabbitmq", "replicas: 3", "replicas: three")
			}, nil},
		{"unknown field deep in the RabbitmqCluster", "additionalConfg",
			func() string {
				return edit(t, good, "RabbitmqCluster", "sagittarius-rabbitmq", "additionalConfig:", "additionalConfg:")
			}, nil},
		{"port differs from services.conf", `container port "http" must be 8083`,
			func() string {
				return edit(t, good, "Deployment", "orders", "containerPort: 8083", "containerPort: 9083")
			}, nil},
		{"HTTP_ADDR differs from services.conf", `HTTP_ADDR "0.0.0.0:9084"`,
			func() string { return edit(t, good, "Deployment", "inventory", "0.0.0.0:8084", "0.0.0.0:9084") }, nil},
		{"service not deployed", "has no Deployment named payments",
			func() string { return drop(t, good, "Deployment", "payments") }, nil},
		{"Service missing", "has no Service named shipping",
			func() string { return drop(t, good, "Service", "shipping") }, nil},
		{"PodDisruptionBudget missing", "no PodDisruptionBudget selects its pods",
			func() string { return drop(t, good, "PodDisruptionBudget", "customers") }, nil},
		{"Secret key missing", "has no key SALES_ORDER_PASSWORD",
			func() string {
				return edit(t, good, "Deployment", "orders", "key: SALES_ORDERS_PASSWORD", "key: SALES_ORDER_PASSWORD")
			}, nil},
		{"wrong password of a service", "SERVICE_PASSWORD must come from the Secret key SALES_ORDERS_PASSWORD",
			func() string {
				return edit(t, good, "Deployment", "orders", "key: SALES_ORDERS_PASSWORD", "key: CRM_CUSTOMERS_PASSWORD")
			}, nil},
		{"undefined $(VAR)", "refers to $(SERVICE_PASSWORD_TYPO)",
			func() string {
				return edit(t, good, "Deployment", "orders", "sales.orders:$(SERVICE_PASSWORD)@", "sales.orders:$(SERVICE_PASSWORD_TYPO)@")
			}, nil},
		{"AMQP user is not the service", "AMQP_URL",
			func() string {
				return edit(t, good, "Deployment", "orders", "amqp://sales.orders:", "amqp://crm.customers:")
			}, nil},
		{"liveness on /health", "livenessProbe on /health",
			func() string {
				return edit(t, good, "Deployment", "orders", "livenessProbe:\n          failureThreshold: 3\n          httpGet:\n            path: /health/live\n            port: http",
					"livenessProbe:\n          failureThreshold: 3\n          httpGet:\n            path: /health\n            port: http")
			}, nil},
		{"no startup probe", "no startupProbe",
			func() string {
				return edit(t, good, "Deployment", "gateway", "        startupProbe:\n          failureThreshold: 90\n          periodSeconds: 2\n          tcpSocket:\n            port: http\n", "")
			}, nil},
		{"gateway upstream wrong", `UPSTREAM_ORDERS "http://orders:9083"`,
			func() string {
				return edit(t, good, "Deployment", "gateway", "value: http://orders:8083", "value: http://orders:9083")
			}, nil},
		{"gateway upstreams list wrong", `UPSTREAMS "customers crm.customers http://customers:8081,catalog`,
			func() string {
				return edit(t, good, "Deployment", "gateway", "orders sales.orders http://orders:8083,", "")
			}, nil},
		{"Ingress to a missing Service port", "Service gateway has no port api",
			func() string { return edit(t, good, "Ingress", "gateway", "name: http", "name: api") }, nil},
		{"image without tag", "has no tag",
			func() string {
				return edit(t, good, "Deployment", "orders", "image: sagittarius:local", "image: sagittarius")
			}, nil},
		{"classic queues on a cluster", `QUEUE_TYPE "classic"`,
			func() string {
				return edit(t, good, "ConfigMap", "sagittarius-config-", "QUEUE_TYPE: quorum", "QUEUE_TYPE: classic")
			}, nil},
		{"a copy drifted from the repository", "key services.conf differs",
			func() string { return good },
			func(o Options) Options {
				files := map[string][]byte{}
				for k, v := range o.Files {
					files[k] = v
				}
				files["services.conf"] = append([]byte("# changed\n"), files["services.conf"]...)
				o.Files = files
				return o
			}},
		{"services.conf has a service more", "has no Deployment named billing",
			func() string { return good },
			func(o Options) Options {
				o.Services = append(append([]servicesconf.Service(nil), o.Services...), servicesconf.Service{Dir: "billing", Name: "finance.billing", Port: 8087})
				return o
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opt
			if c.opt != nil {
				o = c.opt(opt)
			}
			errs := Check([]byte(c.broken()), o)
			if len(errs) == 0 {
				t.Fatalf("no problem found, want one containing %q", c.want)
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), c.want) {
					return
				}
			}
			t.Errorf("no problem contains %q; problems:\n%v", c.want, errs)
		})
	}
}
