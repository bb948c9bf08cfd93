package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

// upstreamsFrom returns the services behind the gateway, in the order the
// root lists them. It reads UPSTREAMS, which scripts/infra-up derives from
// scripts/services.conf: entries separated by commas, each "dir name url"
// (a line of services.conf with the service's URL for its port), e.g.
//
//	UPSTREAMS='customers crm.customers http://127.0.0.1:8081,orders sales.orders http://127.0.0.1:8083'
//
// Without UPSTREAMS it reads scripts/services.conf itself (SERVICES_CONF, or
// scripts/services.conf in the working directory or a directory above it),
// with http://127.0.0.1:<port> for each service that has a queue. In both
// cases UPSTREAM_<DIR> (DIR upper-case, dashes as underscores), when set,
// overrides one service's URL, and may list several instances' URLs,
// comma-separated.
func upstreamsFrom(getenv func(string) string) ([]proxy.Upstream, error) {
	var entries [][3]string
	if v := strings.TrimSpace(getenv("UPSTREAMS")); v != "" {
		for e := range strings.SplitSeq(v, ",") {
			f := strings.Fields(e)
			if len(f) != 3 {
				return nil, fmt.Errorf("UPSTREAMS entry %q: want \"dir name url\"", strings.TrimSpace(e))
			}
			entries = append(entries, [3]string{f[0], f[1], f[2]})
		}
	} else {
		path, err := servicesConf(getenv("SERVICES_CONF"))
		if err != nil {
			return nil, err
		}
		if entries, err = readServicesConf(path); err != nil {
			return nil, err
		}
	}
	var (
		out  []proxy.Upstream
		errs []error
	)
	for _, e := range entries {
		dir, name, raw := e[0], e[1], e[2]
		key := "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(dir, "-", "_"))
		if v := getenv(key); v != "" {
			raw = v
		}
		us, err := proxy.ParseInstances(raw) // one URL, or several instances' comma-separated
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (or UPSTREAMS) %q: %w", key, raw, err))
			continue
		}
		out = append(out, proxy.Upstream{Dir: dir, Name: name, URL: us[0], Instances: us})
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no upstream: set UPSTREAMS"))
	}
	return out, errors.Join(errs...)
}

// servicesConf returns path when set, else scripts/services.conf in the
// working directory or the nearest directory above it.
func servicesConf(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "services.conf")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("UPSTREAMS is not set and no scripts/services.conf was found above the working directory (set UPSTREAMS or SERVICES_CONF)")
		}
		dir = parent
	}
}

// readServicesConf returns "dir name url" for each service of the
// services.conf at path that has a queue (name not "-"), in file order.
func readServicesConf(path string) ([][3]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][3]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case len(fields) != 3:
			return nil, fmt.Errorf("%s:%d: want \"dir name port\"", path, n)
		case fields[1] == "-":
			continue
		}
		out = append(out, [3]string{fields[0], fields[1], "http://127.0.0.1:" + fields[2]})
	}
	return out, sc.Err()
}
