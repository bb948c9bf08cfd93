package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// k8sService is the Deployment, Service and PodDisruptionBudget of a service
// (deploy/k8s/base/services/<dir>.yaml), the same as every other service's.
//
//go:embed k8s-service.yaml.tmpl
var k8sService string

// edit is one file of the tree (a path relative to the root) and its new body.
type edit struct {
	path string
	body []byte
}

// Paths under the root that addDeploy reads and rewrites.
const (
	k8sBase          = "deploy/k8s/base"
	k8sKustomization = k8sBase + "/kustomization.yaml"
	k8sServicesConf  = k8sBase + "/services.conf"
	k8sGateway       = k8sBase + "/services/gateway.yaml"
	k8sMySQL         = k8sBase + "/mysql/mysql.yaml"
	k8sProvision     = k8sBase + "/rabbitmq/provision.yaml"
	k8sDevOverlay    = "deploy/k8s/overlays/dev/kustomization.yaml"
	k8sDevSecrets    = "deploy/k8s/overlays/dev/dev.secrets.env"
	k8sProdSecrets   = "deploy/k8s/overlays/production/secrets.env.example"
	prometheusConfig = "deploy/prometheus/prometheus.yml"
)

// addDeploy returns what deploy/ needs for the service's new line of
// services.conf (conf, the new services.conf), as scripts/check-deploy checks
// it: its Kubernetes manifests (deploy/k8s/base/services/<dir>.yaml, an entry
// in the base kustomization and one in the dev overlay's replicas), the copy
// of services.conf under deploy/k8s/base, the gateway's UPSTREAMS and
// UPSTREAM_<DIR>, its password in the MySQL StatefulSet, the RabbitMQ
// provisioning Job and both overlays' secrets, and the compose Prometheus
// scrape job. It changes nothing on disk, and returns an error when any of
// them exists already. The Grafana dashboards are not among them: they are
// generated from services.conf by deploy/validate's cmd/dashboards, which
// scripts/new-service runs.
func addDeploy(root string, d data, conf []byte) ([]edit, error) {
	read := func(path string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, path))
		return string(b), err
	}
	var edits []edit
	manifest := k8sBase + "/services/" + d.Dir + ".yaml"
	if _, err := os.Lstat(filepath.Join(root, manifest)); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to overwrite it", manifest)
	}
	var b bytes.Buffer
	if err := template.Must(template.New("k8s").Option("missingkey=error").Parse(k8sService)).Execute(&b, d); err != nil {
		return nil, err
	}
	edits = append(edits, edit{manifest, b.Bytes()}, edit{k8sServicesConf, conf})

	// insertBefore adds line before the first line equal to anchor, refusing
	// when line is there already.
	insertBefore := func(path, anchor, line string) error {
		text, err := read(path)
		if err != nil {
			return err
		}
		lines := strings.Split(text, "\n")
		at := -1
		for i, l := range lines {
			if l == line {
				return fmt.Errorf("%s already has %q: refusing to overwrite it", path, strings.TrimSpace(line))
			}
			if l == anchor && at < 0 {
				at = i
			}
		}
		if at < 0 {
			return fmt.Errorf("%s: cannot find %q", path, strings.TrimSpace(anchor))
		}
		lines = append(lines[:at], append([]string{line}, lines[at:]...)...)
		edits = append(edits, edit{path, []byte(strings.Join(lines, "\n"))})
		return nil
	}
	if err := insertBefore(k8sKustomization, "  - services/gateway.yaml", "  - services/"+d.Dir+".yaml"); err != nil {
		return nil, err
	}
	if err := insertBefore(k8sDevOverlay, "  - {name: gateway, count: 1}", "  - {name: "+d.Dir+", count: 1}"); err != nil {
		return nil, err
	}
	job := fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: [\"%s:%d\"]\n", d.Dir, d.Dir, d.Port)
	if err := insertBefore(prometheusConfig, "  - job_name: gateway", job); err != nil {
		return nil, err
	}

	password := d.Env + "_PASSWORD"
	dashed := strings.NewReplacer(".", "-", "_", "-").Replace(d.Name)
	for path, value := range map[string]string{k8sDevSecrets: dashed + "-dev", k8sProdSecrets: "CHANGE-ME"} {
		text, err := read(path)
		if err != nil {
			return nil, err
		}
		if regexp.MustCompile(`(?m)^` + password + `=`).MatchString(text) {
			return nil, fmt.Errorf("%s already has %s: refusing to overwrite it", path, password)
		}
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		edits = append(edits, edit{path, []byte(text + password + "=" + value + "\n")})
	}

	// The password from the Secret, after the last service password of the
	// MySQL StatefulSet and of the RabbitMQ provisioning Job.
	keyRE := regexp.MustCompile(`^(\s+)key: [A-Z0-9_]+_PASSWORD$`)
	for _, path := range []string{k8sMySQL, k8sProvision} {
		text, err := read(path)
		if err != nil {
			return nil, err
		}
		if strings.Contains(text, "- name: "+password+"\n") {
			return nil, fmt.Errorf("%s already has %s: refusing to overwrite it", path, password)
		}
		lines := strings.Split(text, "\n")
		last := -1
		for i, l := range lines {
			if keyRE.MatchString(l) && i >= 4 && strings.Contains(lines[i-4], "- name: ") && strings.HasSuffix(lines[i-4], "_PASSWORD") {
				last = i
			}
		}
		if last < 0 {
			return nil, fmt.Errorf("%s: cannot find the services' passwords", path)
		}
		ind := strings.TrimSuffix(lines[last-4], strings.TrimLeft(lines[last-4], " "))
		block := []string{
			ind + "- name: " + password,
			ind + "  valueFrom:",
			ind + "    secretKeyRef:",
			ind + "      name: sagittarius-passwords",
			ind + "      key: " + password,
		}
		lines = append(lines[:last+1], append(block, lines[last+1:]...)...)
		edits = append(edits, edit{path, []byte(strings.Join(lines, "\n"))})
	}

	// The gateway: its UPSTREAMS value and UPSTREAM_<DIR>.
	text, err := read(k8sGateway)
	if err != nil {
		return nil, err
	}
	if strings.Contains(text, "- name: "+d.Upstream+"\n") {
		return nil, fmt.Errorf("%s already has %s: refusing to overwrite it", k8sGateway, d.Upstream)
	}
	lines := strings.Split(text, "\n")
	upstreams, lastUpstream := -1, -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "- name: UPSTREAMS" && i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), `value: "`) {
			upstreams = i + 1
		}
		if strings.HasPrefix(t, "- name: UPSTREAM_") && i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "value: ") {
			lastUpstream = i + 1
		}
	}
	if upstreams < 0 || lastUpstream < 0 {
		return nil, fmt.Errorf("%s: cannot find UPSTREAMS and the UPSTREAM_ variables", k8sGateway)
	}
	url := fmt.Sprintf("http://%s:%d", d.Dir, d.Port)
	lines[upstreams] = strings.TrimSuffix(lines[upstreams], `"`) + fmt.Sprintf(",%s %s %s\"", d.Dir, d.Name, url)
	ind := strings.TrimSuffix(lines[lastUpstream-1], strings.TrimLeft(lines[lastUpstream-1], " "))
	lines = append(lines[:lastUpstream+1], append([]string{
		ind + "- name: " + d.Upstream,
		ind + `  value: "` + url + `"`,
	}, lines[lastUpstream+1:]...)...)
	edits = append(edits, edit{k8sGateway, []byte(strings.Join(lines, "\n"))})
	return edits, nil
}
