// Command pushd runs one pushd node. Every flag may also be set with an
// environment variable PUSHD_<NAME> (upper case, dashes as underscores);
// a flag on the command line wins over the environment.
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
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pushd:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("pushd", flag.ExitOnError)
	opts := nodeflags.Bind(fs, "./data")
	if err := opts.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	cfg := opts.Config
	node, err := engine.New(cfg)
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	cfg.Logger.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return node.Shutdown(ctx)
}
