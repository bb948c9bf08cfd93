package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return from.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name      string
		times     []time.Time
		to        time.Time
		gap, when time.Duration
	}{
		{"none: the whole window", nil, at(10), 10 * time.Second, 0},
		{"in the middle", []time.Time{at(1), at(2), at(7.5), at(8)}, at(9), 5500 * time.Millisecond, 2 * time.Second},
		{"at the start", []time.Time{at(4), at(5)}, at(6), 4 * time.Second, 0},
		{"at the end", []time.Time{at(1), at(2)}, at(9), 7 * time.Second, 2 * time.Second},
	} {
		gap, when := longestGap(from, tc.to, tc.times)
		if gap != tc.gap || when != tc.when {
			t.Errorf("%s: gap %v from +%v, want %v from +%v", tc.name, gap, when, tc.gap, tc.when)
		}
	}
}

func TestClusterOptions(t *testing.T) {
	getenv := func(k string) string {
		if k == "SAGITTARIUS_ROOT" {
			return "../.."
		}
		return ""
	}
	o, err := parseOptions([]string{"-cluster", "-short"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.cluster || o.queueType != "quorum" || strings.Join(o.scenarios, ",") != "baseline,node-kill,node-stop,partition,instance-kill" {
		t.Errorf("-cluster: cluster %v, queue type %q, scenarios %v", o.cluster, o.queueType, o.scenarios)
	}
	o, err = parseOptions(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cluster || strings.Join(o.scenarios, ",") != strings.Join(scenarioNames(), ",") {
		t.Errorf("default: cluster %v, scenarios %v", o.cluster, o.scenarios)
	}
	if _, err := parseOptions([]string{"-scenarios", "node-kill,nope"}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "instance-kill") {
		t.Errorf("unknown scenario: %v, want the cluster scenarios named", err)
	}
}
