package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The api suite compares the gateway with a bare reverse proxy: the least a
// Go net/http proxy does (httputil.ReverseProxy stripping the /orders
// prefix, no middleware, no logging, no request ids), in a process of its
// own like the gateway. Its ratio to direct reads is what any Go gateway
// could reach on this machine, which tells the gateway's own overhead apart
// from the cost of a second HTTP hop on CPUs the service shares.

// bareProxyArg is the first argument that makes this binary a bare proxy.
const bareProxyArg = "bare-proxy"

// runBareProxy serves a bare reverse proxy to upstream on listen and prints
// the address it listens on as its first line.
func runBareProxy(listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}
	rp := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/orders")
		pr.Out.URL.RawPath = ""
		pr.SetURL(u)
	}}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return (&http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// bareProxy is a running bare proxy process.
type bareProxy struct {
	cmd *exec.Cmd
	url string // base URL; paths are those of the gateway, /orders/...
}

// startBareProxy starts this binary as a bare proxy to upstream.
func startBareProxy(ctx context.Context, upstream string) (*bareProxy, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, bareProxyArg, "127.0.0.1:0", upstream)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, errors.New("bare proxy: exited before listening")
		}
		return &bareProxy{cmd: cmd, url: "http://" + a}, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("bare proxy: not listening after 10 s")
	}
}

func (b *bareProxy) stop() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}
