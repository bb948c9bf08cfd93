package k8s

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

// Options are what Check compares the manifests with.
type Options struct {
	Services []servicesconf.Service
	// CRDs validate custom resources, by apiVersion + "/" + kind.
	CRDs map[string]*CRDSchema
	// Files are the repository's copies of files the manifests carry in
	// ConfigMaps, by key (services.conf, mysql-init.sh, rabbitmq-init.sh):
	// a ConfigMap key of that name must hold the same bytes.
	Files map[string][]byte
	// ExternalSecrets are Secrets created outside the manifests (by an
	// operator), by name, with their keys.
	ExternalSecrets map[string][]string
}

// DefaultExternalSecrets: the RabbitMQ Cluster Operator creates
// <cluster>-default-user with username and password.
var DefaultExternalSecrets = map[string][]string{
	"sagittarius-rabbitmq-default-user": {"username", "password"},
}

// workload is a Deployment, StatefulSet or Job: its pod template and selector.
type workload struct {
	obj      Object
	selector map[string]string // nil for a Job
	pod      corev1.PodTemplateSpec
	claims   []string // a StatefulSet's volumeClaimTemplates
}

// manifest indexes the decoded objects.
type manifest struct {
	objs       []Object
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]map[string]bool
	services   map[string]*corev1.Service
	workloads  []workload
	pdbs       []Object
	ingresses  []Object
	rabbits    []Object
	namespaces map[string]bool
}

// Check decodes the rendered manifest of one overlay and returns every
// problem found: decoding errors, schema violations, dangling references,
// missing probes or resources, and disagreements with services.conf. No
// problem means a nil slice.
func Check(stream []byte, opt Options) []error {
	objs, errs := Decode(stream)
	p := &problems{errs: errs}
	m := index(objs, opt, p)
	for _, o := range m.rabbits {
		c := opt.CRDs[o.APIVersion+"/"+o.Kind]
		if c == nil {
			p.add(o, "no CustomResourceDefinition schema to validate it against")
			continue
		}
		if err := c.Validate(o.Raw); err != nil {
			p.add(o, "does not match the CRD schema: %v", err)
		}
	}
	m.checkNames(p)
	for _, w := range m.workloads {
		m.checkWorkload(w, opt, p)
	}
	m.checkServices(p)
	m.checkPDBs(p)
	m.checkIngresses(p)
	m.checkConfigFiles(opt, p)
	m.checkPlatform(opt, p)
	return p.errs
}

type problems struct{ errs []error }

func (p *problems) add(o Object, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
}

func (p *problems) addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func index(objs []Object, opt Options, p *problems) *manifest {
	m := &manifest{objs: objs, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]map[string]bool{},
		services: map[string]*corev1.Service{}, namespaces: map[string]bool{}}
	for name, keys := range opt.ExternalSecrets {
		m.secrets[name] = map[string]bool{}
		for _, k := range keys {
			m.secrets[name][k] = true
		}
	}
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = t
		case *corev1.Secret:
			keys := map[string]bool{}
			for k := range t.Data {
				keys[k] = true
			}
			for k := range t.StringData {
				keys[k] = true
			}
			m.secrets[o.Name] = keys
		case *corev1.Service:
			m.services[o.Name] = t
		case *corev1.Namespace:
			m.namespaces[o.Name] = true
		case *appsv1.Deployment:
			m.workloads = append(m.workloads, workload{obj: o, selector: selectorOf(o, t.Spec.Selector.MatchLabels, p), pod: t.Spec.Template})
		case *appsv1.StatefulSet:
			w := workload{obj: o, selector: selectorOf(o, t.Spec.Selector.MatchLabels, p), pod: t.Spec.Template}
			for _, pvc := range t.Spec.VolumeClaimTemplates {
				w.claims = append(w.claims, pvc.Name)
			}
			m.workloads = append(m.workloads, w)
		case *batchv1.Job:
			m.workloads = append(m.workloads, workload{obj: o, pod: t.Spec.Template})
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *networkingv1.Ingress:
			m.ingresses = append(m.ingresses, o)
		case nil:
			m.rabbits = append(m.rabbits, o)
		}
	}
	return m
}

func selectorOf(o Object, match map[string]string, p *problems) map[string]string {
	if len(match) == 0 {
		p.add(o, "spec.selector.matchLabels is empty")
	}
	return match
}

// checkNames: one object per kind and name, and every namespaced object in a
// namespace the manifest creates.
func (m *manifest) checkNames(p *problems) {
	seen := map[string]bool{}
	for _, o := range m.objs {
		key := o.Kind + "/" + o.Name
		if seen[key] {
			p.add(o, "a second %s named %s", o.Kind, o.Name)
		}
		seen[key] = true
		if o.Kind == "Namespace" {
			continue
		}
		if o.Namespace == "" {
			p.add(o, "no namespace (the overlay's kustomization sets it)")
		} else if !m.namespaces[o.Namespace] {
			p.add(o, "namespace %s is not created by the manifest", o.Namespace)
		}
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func (m *manifest) checkWorkload(w workload, opt Options, p *problems) {
	o, pod := w.obj, w.pod
	if w.selector != nil {
		if !labels.SelectorFromSet(w.selector).Matches(labels.Set(pod.Labels)) {
			p.add(o, "selector %v does not select its own pod template (labels %v)", w.selector, pod.Labels)
		}
	}
	spec := pod.Spec
	if len(spec.Containers) == 0 {
		p.add(o, "no container")
	}
	volumes := map[string]corev1.Volume{}
	for _, name := range w.claims {
		volumes[name] = corev1.Volume{Name: name}
	}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				p.add(o, "volume %s: ConfigMap %s is not in the manifest", v.Name, v.ConfigMap.Name)
			}
		}
		if v.Secret != nil {
			if _, ok := m.secrets[v.Secret.SecretName]; !ok {
				p.add(o, "volume %s: Secret %s is not in the manifest", v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, c := range spec.Containers {
		where := fmt.Sprintf("container %s", c.Name)
		m.checkImage(o, where, c.Image, p)
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			p.add(o, "%s: resources need requests (cpu, memory) and a memory limit", where)
		}
		if lim, req := c.Resources.Limits.Memory(), c.Resources.Requests.Memory(); !lim.IsZero() && lim.Cmp(*req) < 0 {
			p.add(o, "%s: memory limit %s below its request %s", where, lim, req)
		}
		ports := map[string]int32{}
		numbers := map[int32]bool{}
		for _, cp := range c.Ports {
			if cp.Name != "" {
				ports[cp.Name] = cp.ContainerPort
			}
			numbers[cp.ContainerPort] = true
		}
		probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}
		for name, pr := range probes {
			if pr == nil {
				if o.Kind != "Job" {
					p.add(o, "%s: no %s", where, name)
				}
				continue
			}
			var port *intstr.IntOrString
			switch {
			case pr.HTTPGet != nil:
				port = &pr.HTTPGet.Port
				if pr.HTTPGet.Path == "" {
					p.add(o, "%s: %s has no path", where, name)
				}
			case pr.TCPSocket != nil:
				port = &pr.TCPSocket.Port
			case pr.Exec != nil, pr.GRPC != nil:
			default:
				p.add(o, "%s: %s has no handler", where, name)
			}
			if port != nil {
				if port.Type == intstr.String {
					if _, ok := ports[port.StrVal]; !ok {
						p.add(o, "%s: %s uses port %q, which the container does not name", where, name, port.StrVal)
					}
				} else if !numbers[port.IntVal] {
					p.add(o, "%s: %s uses port %d, which the container does not declare", where, name, port.IntVal)
				}
			}
		}
		// Liveness must never depend on the broker or the database: /health checks both.
		if lp := c.LivenessProbe; lp != nil && lp.HTTPGet != nil && (lp.HTTPGet.Path == "/health" || lp.HTTPGet.Path == "/health/") {
			p.add(o, "%s: livenessProbe on /health, which fails when the broker or database does: a broker outage would restart every pod", where)
		}
		// Environment: references resolve, $(VAR) names an earlier variable.
		defined := map[string]bool{}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				cm := m.configMaps[ef.ConfigMapRef.Name]
				if cm == nil {
					p.add(o, "%s: envFrom ConfigMap %s is not in the manifest", where, ef.ConfigMapRef.Name)
					continue
				}
				for k := range cm.Data {
					defined[ef.Prefix+k] = true
				}
			}
			if ef.SecretRef != nil {
				keys, ok := m.secrets[ef.SecretRef.Name]
				if !ok {
					p.add(o, "%s: envFrom Secret %s is not in the manifest", where, ef.SecretRef.Name)
				}
				for k := range keys {
					defined[ef.Prefix+k] = true
				}
			}
		}
		for _, e := range c.Env {
			for _, ref := range varRef.FindAllStringSubmatch(e.Value, -1) {
				if !defined[ref[1]] {
					p.add(o, "%s: %s refers to $(%s), which is not defined before it (Kubernetes would pass the text unexpanded)", where, e.Name, ref[1])
				}
			}
			if vf := e.ValueFrom; vf != nil {
				if r := vf.SecretKeyRef; r != nil {
					if keys, ok := m.secrets[r.Name]; !ok {
						p.add(o, "%s: %s: Secret %s is not in the manifest", where, e.Name, r.Name)
					} else if !keys[r.Key] {
						p.add(o, "%s: %s: Secret %s has no key %s", where, e.Name, r.Name, r.Key)
					}
				}
				if r := vf.ConfigMapKeyRef; r != nil {
					if cm := m.configMaps[r.Name]; cm == nil {
						p.add(o, "%s: %s: ConfigMap %s is not in the manifest", where, e.Name, r.Name)
					} else if _, ok := cm.Data[r.Key]; !ok {
						p.add(o, "%s: %s: ConfigMap %s has no key %s", where, e.Name, r.Name, r.Key)
					}
				}
			}
			defined[e.Name] = true
		}
		for _, vm := range c.VolumeMounts {
			v, ok := volumes[vm.Name]
			if !ok {
				p.add(o, "%s: mounts volume %s, which the pod does not have", where, vm.Name)
				continue
			}
			if vm.SubPath != "" && v.ConfigMap != nil {
				if cm := m.configMaps[v.ConfigMap.Name]; cm != nil {
					if _, ok := cm.Data[vm.SubPath]; !ok {
						p.add(o, "%s: mount %s: ConfigMap %s has no key %s", where, vm.MountPath, v.ConfigMap.Name, vm.SubPath)
					}
				}
			}
		}
	}
	// Graceful termination: the preStop sleep plus the services' 10 s HTTP grace must fit.
	if o.Kind == "Deployment" {
		grace := int64(30)
		if spec.TerminationGracePeriodSeconds != nil {
			grace = *spec.TerminationGracePeriodSeconds
		}
		for _, c := range spec.Containers {
			var sleep int64
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				p.add(o, "container %s: no preStop sleep (endpoints are removed while the pod still serves)", c.Name)
			} else {
				sleep = c.Lifecycle.PreStop.Sleep.Seconds
			}
			if grace < sleep+10+10 {
				p.add(o, "terminationGracePeriodSeconds %d does not cover the preStop sleep (%d s), the HTTP grace (10 s) and the drain of consumers and relay (10 s)", grace, sleep)
			}
		}
	}
}

func (m *manifest) checkImage(o Object, where, image string, p *problems) {
	if image == "" {
		p.add(o, "%s: no image", where)
		return
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok && !strings.Contains(image, "@sha256:") {
		p.add(o, "%s: image %s has no tag (set one in the overlay's images)", where, image)
	}
	if tag == "latest" {
		p.add(o, "%s: image %s: a fixed tag, not latest", where, image)
	}
}

// podsOf returns the workloads whose pod labels the selector matches.
func (m *manifest) podsOf(sel map[string]string) []workload {
	var out []workload
	if len(sel) == 0 {
		return nil
	}
	s := labels.SelectorFromSet(sel)
	for _, w := range m.workloads {
		if s.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// rabbitSelects reports whether sel selects the pods of a RabbitmqCluster
// (the operator labels them app.kubernetes.io/name=<cluster>).
func (m *manifest) rabbitSelects(sel map[string]string) bool {
	for _, r := range m.rabbits {
		if len(sel) == 1 && sel["app.kubernetes.io/name"] == r.Name {
			return true
		}
	}
	return false
}

func (m *manifest) checkServices(p *problems) {
	for _, o := range m.objs {
		svc, ok := o.Typed.(*corev1.Service)
		if !ok {
			continue
		}
		pods := m.podsOf(svc.Spec.Selector)
		if len(pods) == 0 {
			p.add(o, "selector %v selects no pod of the manifest", svc.Spec.Selector)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				continue
			}
			for _, w := range pods {
				found := false
				for _, c := range w.pod.Spec.Containers {
					for _, cp := range c.Ports {
						found = found || cp.Name == sp.TargetPort.StrVal
					}
				}
				if !found {
					p.add(o, "port %s: targetPort %q is not a named port of %s", sp.Name, sp.TargetPort.StrVal, w.obj)
				}
			}
		}
	}
}

func (m *manifest) checkPDBs(p *problems) {
	for _, o := range m.pdbs {
		pdb := o.Typed.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.Selector == nil {
			p.add(o, "no selector")
			continue
		}
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			p.add(o, "neither minAvailable nor maxUnavailable")
		}
		sel := pdb.Spec.Selector.MatchLabels
		if len(m.podsOf(sel)) == 0 && !m.rabbitSelects(sel) {
			p.add(o, "selector %v selects no pod of the manifest", sel)
		}
	}
}

func (m *manifest) checkIngresses(p *problems) {
	for _, o := range m.ingresses {
		ing := o.Typed.(*networkingv1.Ingress)
		if len(ing.Spec.Rules) == 0 {
			p.add(o, "no rule")
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				p.add(o, "rule for %q has no http paths", r.Host)
				continue
			}
			for _, path := range r.HTTP.Paths {
				b := path.Backend.Service
				if b == nil {
					p.add(o, "path %s has no service backend", path.Path)
					continue
				}
				svc := m.services[b.Name]
				if svc == nil {
					p.add(o, "path %s: Service %s is not in the manifest", path.Path, b.Name)
					continue
				}
				found := false
				for _, sp := range svc.Spec.Ports {
					found = found || (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number)
				}
				if !found {
					p.add(o, "path %s: Service %s has no port %s%d", path.Path, b.Name, b.Port.Name, b.Port.Number)
				}
			}
		}
	}
}

// checkConfigFiles: ConfigMap keys that carry a repository file hold that
// file's bytes (the copies under deploy/k8s must not drift).
func (m *manifest) checkConfigFiles(opt Options, p *problems) {
	carried := map[string]bool{}
	for _, o := range m.objs {
		cm, ok := o.Typed.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		for key, want := range opt.Files {
			got, ok := cm.Data[key]
			if !ok {
				continue
			}
			carried[key] = true
			if !bytes.Equal([]byte(got), want) {
				p.add(o, "key %s differs from the repository's %s: copy it again", key, key)
			}
		}
	}
	for key := range opt.Files {
		if !carried[key] {
			p.addf("no ConfigMap carries %s", key)
		}
	}
}

// deployment returns the Deployment named name and its first container.
func (m *manifest) deployment(name string) (Object, *corev1.Container, *appsv1.Deployment) {
	for _, w := range m.workloads {
		if d, ok := w.obj.Typed.(*appsv1.Deployment); ok && w.obj.Name == name && len(d.Spec.Template.Spec.Containers) > 0 {
			return w.obj, &d.Spec.Template.Spec.Containers[0], d
		}
	}
	return Object{}, nil, nil
}

// envOf returns the container's variables: literal values, and for
// references "secret:NAME/KEY" or "configmap:NAME/KEY"; envFrom ConfigMaps
// contribute their data.
func (m *manifest) envOf(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			if cm := m.configMaps[ef.ConfigMapRef.Name]; cm != nil {
				for k, v := range cm.Data {
					env[ef.Prefix+k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			env[e.Name] = "configmap:" + e.ValueFrom.ConfigMapKeyRef.Name + "/" + e.ValueFrom.ConfigMapKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// checkPlatform compares the manifest with services.conf.
func (m *manifest) checkPlatform(opt Options, p *problems) {
	if len(opt.Services) == 0 {
		p.addf("services.conf: no service to check the manifests against")
		return
	}
	listed := map[string]bool{}
	var passwordVars []string
	for _, s := range opt.Services {
		listed[s.Dir] = true
		if s.HasBus() {
			passwordVars = append(passwordVars, s.PasswordVar())
		}
	}
	for _, w := range m.workloads {
		if w.obj.Kind == "Deployment" && !listed[w.obj.Name] {
			p.add(w.obj, "is not a service of services.conf")
		}
	}
	for _, s := range opt.Services {
		o, c, d := m.deployment(s.Dir)
		if c == nil {
			p.addf("service %s (services.conf) has no Deployment named %s", s.Dir, s.Dir)
			continue
		}
		m.checkService(s, o, c, d, opt, p)
	}
	// Whatever provisions users must know every service's password.
	for _, w := range m.workloads {
		if w.obj.Kind != "StatefulSet" && w.obj.Kind != "Job" {
			continue
		}
		for i := range w.pod.Spec.Containers {
			env := m.envOf(&w.pod.Spec.Containers[i])
			if _, provisions := env["SERVICES_CONF"]; !provisions {
				continue
			}
			for _, v := range passwordVars {
				if !strings.HasPrefix(env[v], "secret:") || !strings.HasSuffix(env[v], "/"+v) {
					p.add(w.obj, "provisions the services of services.conf but has no %s from the Secret key %s", v, v)
				}
			}
		}
	}
}

func (m *manifest) checkService(s servicesconf.Service, o Object, c *corev1.Container, d *appsv1.Deployment, opt Options, p *problems) {
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 1 {
		p.add(o, "replicas %d", *d.Spec.Replicas)
	}
	if want := "/usr/local/bin/" + s.Dir; len(c.Command) == 0 || c.Command[0] != want {
		p.add(o, "command %v, want [%s] (the image's binary of the service)", c.Command, want)
	}
	var http *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http" {
			http = &c.Ports[i]
		}
	}
	if http == nil || int(http.ContainerPort) != s.Port {
		p.add(o, "container port \"http\" must be %d (services.conf)", s.Port)
	}
	env := m.envOf(c)
	if want := "0.0.0.0:" + strconv.Itoa(s.Port); env["HTTP_ADDR"] != want {
		p.add(o, "HTTP_ADDR %q, want %q", env["HTTP_ADDR"], want)
	}
	if rp := c.ReadinessProbe; s.HasBus() && (rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/health") {
		p.add(o, "readinessProbe must be GET /health (database and broker)")
	}
	if svc := m.services[s.Dir]; svc == nil {
		p.addf("service %s (services.conf) has no Service named %s", s.Dir, s.Dir)
	} else {
		found := false
		for _, sp := range svc.Spec.Ports {
			found = found || int(sp.Port) == s.Port
		}
		if !found {
			p.add(Object{Kind: "Service", Name: s.Dir, Index: 0}, "no port %d (services.conf)", s.Port)
		}
	}
	pdb := false
	for _, po := range m.pdbs {
		sel := po.Typed.(*policyv1.PodDisruptionBudget).Spec.Selector
		pdb = pdb || (sel != nil && labels.SelectorFromSet(sel.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)))
	}
	if !pdb {
		p.add(o, "no PodDisruptionBudget selects its pods")
	}
	if !s.HasBus() {
		var ups []string
		for _, other := range opt.Services {
			if !other.HasBus() {
				continue
			}
			key := "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(other.Dir, "-", "_"))
			want := fmt.Sprintf("http://%s:%d", other.Dir, other.Port)
			if env[key] != "" && env[key] != want {
				p.add(o, "%s %q, want %q", key, env[key], want)
			}
			ups = append(ups, fmt.Sprintf("%s %s %s", other.Dir, other.Name, want))
		}
		if want := strings.Join(ups, ","); env["UPSTREAMS"] != want {
			p.add(o, "UPSTREAMS %q, want %q (services.conf)", env["UPSTREAMS"], want)
		}
		return
	}
	pw := env["SERVICE_PASSWORD"]
	if want := "/" + s.PasswordVar(); !strings.HasPrefix(pw, "secret:") || !strings.HasSuffix(pw, want) {
		p.add(o, "SERVICE_PASSWORD must come from the Secret key %s, got %q", s.PasswordVar(), pw)
	}
	amqp := env["AMQP_URL"]
	for _, u := range strings.Split(amqp, ",") {
		if !strings.HasPrefix(u, "amqp://"+s.Name+":$(SERVICE_PASSWORD)@") || !strings.HasSuffix(u, "/sagittarius") {
			p.add(o, "AMQP_URL %q: want amqp://%s:$(SERVICE_PASSWORD)@HOST:PORT/sagittarius (user = the service's name, vhost sagittarius)", u, s.Name)
		}
	}
	db := s.DBName()
	dsn := env["MYSQL_DSN"]
	if !strings.HasPrefix(dsn, db+":$(SERVICE_PASSWORD)@tcp(") || !strings.Contains(dsn, ")/"+db+"?") ||
		!strings.Contains(dsn, "parseTime=true") || !strings.Contains(dsn, "loc=UTC") {
		p.add(o, "MYSQL_DSN %q: want %s:$(SERVICE_PASSWORD)@tcp(HOST:3306)/%s?parseTime=true&loc=UTC", dsn, db, db)
	}
	if qt := env["QUEUE_TYPE"]; qt != "quorum" {
		p.add(o, "QUEUE_TYPE %q: the broker is a three-node cluster, queues must be quorum", qt)
	}
	if env["PUBLIC_BASE_URL"] == "" {
		p.add(o, "no PUBLIC_BASE_URL")
	}
}
