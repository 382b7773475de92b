// Command pushrelay runs a PUSH RELAY: a pushd node for devices in a
// network the public cluster cannot reach, fed by one multi-UAID WebSocket
// to that cluster (-upstream). Devices speak the usual client protocol to
// it and get the upstream's endpoints; the relay acks upstream only once a
// version is durable in its own store.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/relay"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pushrelay:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg engine.Config
	upstream := flag.String("upstream", "", "upstream pushd WebSocket `URL`, e.g. ws://push.example.com:8080/ (required)")
	flag.StringVar(&cfg.WSAddr, "ws-addr", ":8080", "device WebSocket listener `address`")
	flag.StringVar(&cfg.HTTPAddr, "http-addr", ":8081", "REST, /health and /metrics listener `address`")
	flag.StringVar(&cfg.DataDir, "data-dir", "./relay-data", "`directory` of the relay's store")
	logLevel := flag.String("log-level", "info", "log `level`")
	flag.Parse()
	if *upstream == "" {
		return fmt.Errorf("-upstream is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

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
