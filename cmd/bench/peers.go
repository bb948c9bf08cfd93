package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// benchPeers runs the peer comparisons (cmd/bench/peers: watermill-amqp and
// watermill-sql's forwarder against the bus and the relay). They are a Go
// module of their own, so that watermill stays out of the product's
// dependency graph: this builds and runs it with `go run`, in the same
// environment, with the bus suite's sizes.
func benchPeers(ctx context.Context, cfg config, getenv func(string) string) error {
	dir := filepath.Join(cfg.root, "cmd", "bench", "peers")
	fmt.Fprintf(cfg.out, "\npeer benchmark (go run in %s: a module of its own)\n", dir)
	cmd := exec.CommandContext(ctx, "go", "run", ".",
		"-messages", strconv.Itoa(min(cfg.messages, 10000)), "-size", strconv.Itoa(cfg.size),
		"-inflight", strconv.Itoa(cfg.inflight), "-prefetch", strconv.Itoa(cfg.prefetch),
		"-repeat", strconv.Itoa(cfg.repeat))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"SAGITTARIUS_TEST_AMQP_URL="+getenv("SAGITTARIUS_TEST_AMQP_URL"),
		"SAGITTARIUS_TEST_RABBIT_API="+getenv("SAGITTARIUS_TEST_RABBIT_API"),
		"SAGITTARIUS_TEST_MYSQL_DSN="+getenv("SAGITTARIUS_TEST_MYSQL_DSN"))
	cmd.Stdout = cfg.out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("suite peers: %w", err)
	}
	return nil
}
