// Command pushrelay runs a PUSH RELAY: a pushd node for devices in a
// network the public cluster cannot reach, fed by one multi-UAID WebSocket
// to that cluster (-upstream). Devices speak the usual client protocol to
// it and get the upstream's endpoints; the relay acks upstream only once a
// version is durable in its own store. It takes every pushd flag (and
// PUSHD_<NAME> variables) besides -upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/nodeflags"
	"github.com/pushd/pushd/internal/relay"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pushrelay:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("pushrelay", flag.ExitOnError)
	upstream := fs.String("upstream", "", "upstream pushd WebSocket `URL`, e.g. ws://push.example.com:8080/ (required)")
	opts := nodeflags.Bind(fs, "./relay-data")
	if err := opts.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("-upstream is required")
	}
	cfg := opts.Config
	up := relay.New(*upstream, cfg.Logger.With("component", "upstream"))
	cfg.Upstream = up
	node, err := engine.New(cfg)
	if err != nil {
		return err
	}
	up.SetNode(node)
	if err := node.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); up.Run(ctx) }()
	<-ctx.Done()
	<-done
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return node.Shutdown(sctx)
}
