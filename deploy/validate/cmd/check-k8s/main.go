// Command check-k8s validates rendered Kubernetes manifests (the output of
// `kubectl kustomize` for one overlay) against the Kubernetes API types, the
// RabbitmqCluster CRD schema and scripts/services.conf; see package k8s.
// scripts/check-k8s renders every overlay and runs it:
//
//	check-k8s -repo ../.. rendered.yaml
//
// It prints every problem and exits 1 if there is one, 0 otherwise.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sagittarius-a/sagittarius/deploy/validate/k8s"
	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

func main() {
	repo := flag.String("repo", "../..", "root of the repository (services.conf, the scripts the ConfigMaps carry)")
	crd := flag.String("crd", "", "RabbitmqCluster CRD (default: deploy/validate/k8s/crd/rabbitmq.com_rabbitmqclusters.yaml under -repo)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: check-k8s [-repo DIR] [-crd FILE] RENDERED.yaml|-")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := run(*repo, *crd, flag.Arg(0), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check-k8s:", err)
		os.Exit(2)
	}
	if n > 0 {
		os.Exit(1)
	}
}

// run checks one rendered manifest and returns the number of problems.
func run(repo, crdPath, manifest string, out io.Writer) (int, error) {
	if crdPath == "" {
		crdPath = filepath.Join(repo, "deploy/validate/k8s/crd/rabbitmq.com_rabbitmqclusters.yaml")
	}
	svcs, err := servicesconf.ReadFile(filepath.Join(repo, "scripts/services.conf"))
	if err != nil {
		return 0, err
	}
	crd, err := k8s.LoadCRD(crdPath, "v1beta1")
	if err != nil {
		return 0, err
	}
	files := map[string][]byte{}
	for key, path := range map[string]string{
		"services.conf":    "scripts/services.conf",
		"mysql-init.sh":    "scripts/compose/mysql-init.sh",
		"rabbitmq-init.sh": "scripts/compose/rabbitmq-init.sh",
	} {
		if files[key], err = os.ReadFile(filepath.Join(repo, path)); err != nil {
			return 0, err
		}
	}
	var stream []byte
	if manifest == "-" {
		stream, err = io.ReadAll(os.Stdin)
	} else {
		stream, err = os.ReadFile(manifest)
	}
	if err != nil {
		return 0, err
	}
	problems := k8s.Check(stream, k8s.Options{
		Services:        svcs,
		CRDs:            map[string]*k8s.CRDSchema{crd.APIVersion + "/" + crd.Kind: crd},
		Files:           files,
		ExternalSecrets: k8s.DefaultExternalSecrets,
	})
	objs, _ := k8s.Decode(stream)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
	}
	var summary []string
	for _, k := range []string{"Namespace", "ConfigMap", "Secret", "RabbitmqCluster", "StatefulSet", "Job", "Deployment", "Service", "PodDisruptionBudget", "Ingress"} {
		if kinds[k] > 0 {
			summary = append(summary, fmt.Sprintf("%d %s", kinds[k], k))
		}
	}
	for _, p := range problems {
		fmt.Fprintln(out, "  problem:", p)
	}
	fmt.Fprintf(out, "%s: %d objects (%s), %d services of services.conf, %d problem(s)\n",
		manifest, len(objs), strings.Join(summary, ", "), len(svcs), len(problems))
	return len(problems), nil
}
