package main

import (
	"context"
	"math"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(xs, c.q); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
	if xs[0] != 100*time.Millisecond {
		t.Error("percentile sorted its argument")
	}
}

func TestSizedMessagesHaveTheSagasSize(t *testing.T) {
	msgs, err := sizedMessages(context.Background(), 3, 1200, map[string]string{"correlation_id": "c", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if d := len(m.Body) - 1200; d < -10 || d > 10 {
			t.Errorf("body of %d bytes, want about 1200", len(m.Body))
		}
		if m.Headers["correlation_id"] != "c" || m.Headers["causation_id"] == "" {
			t.Errorf("headers %v", m.Headers)
		}
	}
}

func TestProcessReadings(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if kb, err := rssKB(os.Getpid()); err != nil || kb <= 0 {
		t.Errorf("rssKB = %d, %v", kb, err)
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Errorf("cpuTicks: %v", err)
	}
	if machineTicks() <= 0 {
		t.Error("machineTicks")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if pid := listenerPID(ln.Addr().(*net.TCPAddr).Port); pid != os.Getpid() {
		t.Errorf("listenerPID = %d, want this process %d", pid, os.Getpid())
	}
}

func TestFlagsAreChecked(t *testing.T) {
	getenv := func(string) string { return "x" }
	for _, args := range [][]string{
		{"-suite", "nope"},
		{"-saga-clients", "8,zero"},
		{"-limit-db-conns", "0"},
		{"-saga-lines", "5", "-saga-products", "2"},
		{"-service-env", "NOEQUALS"},
	} {
		if err := run(context.Background(), args, getenv, &discard{}); err == nil {
			t.Errorf("run(%v): want an error", args)
		}
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

func TestBackgroundShare(t *testing.T) {
	cpus := float64(runtime.NumCPU())
	if got, want := backgroundShare(300, 100, time.Second), 200/(100*cpus); math.Abs(got-want) > 1e-9 {
		t.Errorf("backgroundShare(300, 100, 1s) = %v, want %v", got, want)
	}
	if got := backgroundShare(100, 150, time.Second); got != 0 {
		t.Errorf("more known than machine ticks: %v, want 0", got)
	}
	if got := sumTicks([]int64{10, -1, 5}, []int64{15, 40, 9}); got != 9 {
		t.Errorf("sumTicks = %d, want 9 (unreadable processes left out)", got)
	}
}
