// Package k8s validates the rendered Kubernetes manifests of deploy/k8s (the
// output of `kubectl kustomize` for an overlay) without a cluster:
//
//   - every object is decoded strictly into its k8s.io/api type, chosen by
//     apiVersion and kind: an unknown field, a duplicate key, a value of the
//     wrong type or an unknown kind is an error;
//   - a RabbitmqCluster (rabbitmq.com/v1beta1) is validated against the
//     OpenAPI schema of the operator's CustomResourceDefinition, with unknown
//     fields refused;
//   - references resolve (Secrets and ConfigMaps and their keys, Services to
//     pods and named ports, PodDisruptionBudgets to pods, the Ingress to a
//     Service port, $(VAR) to an earlier variable), and workloads carry
//     probes, resources and graceful termination;
//   - the manifests agree with scripts/services.conf: every service deployed,
//     with its port, command, HTTP_ADDR, AMQP_URL, MYSQL_DSN, password key and
//     the gateway's upstreams.
package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one decoded document of a manifest.
type Object struct {
	Index      int    // position in the stream, from 1
	APIVersion string // e.g. apps/v1
	Kind       string // e.g. Deployment
	Name       string
	Namespace  string
	Typed      any            // *appsv1.Deployment, ...; nil for a RabbitmqCluster
	Raw        map[string]any // the document as JSON values (for a RabbitmqCluster)
}

func (o Object) String() string { return fmt.Sprintf("%s %s (document %d)", o.Kind, o.Name, o.Index) }

// newTyped returns an empty object of the k8s.io/api type for apiVersion and
// kind, or nil when the kind is not one the platform's manifests may contain.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	}
	return nil
}

// Decode splits a multi-document YAML stream and decodes every document
// strictly. It returns one error per document that fails (unknown kind,
// unknown or duplicate field, wrong type), each naming the document, and the
// objects it could decode, leniently for those whose only fault is an
// unknown field. The RabbitmqCluster schema is checked by Check, not here.
func Decode(stream []byte) ([]Object, []error) {
	var (
		objs []Object
		errs []error
	)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			i--
			continue
		}
		obj, err := decodeOne(i, doc)
		if err != nil {
			errs = append(errs, err)
		}
		if obj.Typed != nil || obj.Raw != nil {
			objs = append(objs, obj)
		}
	}
	if len(objs) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no object in the manifest"))
	}
	return objs, errs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

func decodeOne(i int, doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc) // refuses duplicate keys
	if err != nil {
		return Object{}, fmt.Errorf("document %d: %w", i, err)
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(js, &head); err != nil {
		return Object{}, fmt.Errorf("document %d: %w", i, err)
	}
	obj := Object{Index: i, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace}
	if obj.APIVersion == "" || obj.Kind == "" {
		return obj, fmt.Errorf("document %d: no apiVersion or kind", i)
	}
	if obj.Name == "" {
		return obj, fmt.Errorf("%s: no metadata.name", obj)
	}
	if obj.APIVersion == "rabbitmq.com/v1beta1" && obj.Kind == "RabbitmqCluster" {
		if err := yaml.Unmarshal(js, &obj.Raw); err != nil {
			return obj, fmt.Errorf("%s: %w", obj, err)
		}
		return obj, nil
	}
	typed := newTyped(obj.APIVersion, obj.Kind)
	if typed == nil {
		return obj, fmt.Errorf("%s: %s/%s is not a kind these manifests may hold (add it to newTyped with its k8s.io/api type)", obj, obj.APIVersion, obj.Kind)
	}
	// UnmarshalStrict: unknown fields and duplicate keys are errors. An object
	// that only has unknown fields is still returned, decoded leniently, so
	// that the other checks see it too.
	if err := yaml.UnmarshalStrict(js, typed); err != nil {
		lenient := newTyped(obj.APIVersion, obj.Kind)
		if yaml.Unmarshal(js, lenient) == nil {
			obj.Typed = lenient
		}
		return obj, fmt.Errorf("%s: %w", obj, err)
	}
	obj.Typed = typed
	return obj, nil
}
