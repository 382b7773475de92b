// Command pushd runs one pushd node. Every flag may also be set with an
// environment variable PUSHD_<NAME> (upper case, dashes as underscores);
// a flag on the command line wins over the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/pushd/engine"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pushd:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg engine.Config
	fs := flag.NewFlagSet("pushd", flag.ExitOnError)
	fs.StringVar(&cfg.WSAddr, "ws-addr", ":8080", "client WebSocket listener `address`")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", ":8081", "ingest, REST, /health and /metrics listener `address`")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "`directory` of the Pebble shard and the token key file")
	fs.StringVar(&cfg.EndpointURL, "endpoint-url", "http://localhost:8081", "public base `URL` of push endpoints")
	fs.StringVar(&cfg.TokenKeys, "token-keys", "", "comma-separated endpoint token `keys` (base64url or hex, 32 bytes; the first seals); empty: DATA-DIR/token.keys, created on first start")
	fs.DurationVar(&cfg.LockWait, "lock-wait", 250*time.Millisecond, "how long a PUT waits for an in-flight UPDATE's ack before 503")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 15*time.Second, "how long an UPDATE stays in flight without an ack")
	fs.Float64Var(&cfg.EndpointRate, "endpoint-rate", 1000, "PUTs per second one endpoint may take before 429; -1 = unlimited")
	fs.Float64Var(&cfg.SourceRate, "source-rate", 0, "PUTs per second one source IP may send before 429; 0 = unlimited")
	fs.Uint64Var(&cfg.MemTableSize, "memtable-size", 64<<20, "store memtable size in bytes; larger means fewer flushes in the PUT latency tail, filled only as written")
	fs.DurationVar(&cfg.KickInterval, "kick-interval", 30*time.Second, "least time between two wake-ups of one UAID")
	fs.Func("kick-udp-networks", "comma-separated `CIDRs` UDP wake-ups may be sent to; empty: UDP kicks refused", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return err
			}
			cfg.KickUDPNetworks = append(cfg.KickUDPNetworks, p)
		}
		return nil
	})
	fs.Func("kick-webhook-prefixes", "comma-separated URL `prefixes` webhook wake-ups may POST to; empty: webhook kicks refused", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				cfg.KickWebhookPrefixes = append(cfg.KickWebhookPrefixes, f)
			}
		}
		return nil
	})
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "client connection cap; 0 = derived from the open-files limit")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 5*time.Second, "WebSocket handshake deadline after accept")
	fs.DurationVar(&cfg.HelloTimeout, "hello-timeout", 10*time.Second, "hello deadline after the upgrade")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", 5*time.Minute, "WebSocket ping interval on quiet connections")
	fs.DurationVar(&cfg.PongTimeout, "pong-timeout", 30*time.Second, "how long a pong may take before the connection is dropped")
	fs.DurationVar(&cfg.MinPingInterval, "min-ping-interval", 20*time.Second, "closest client pings may come before close 4774")
	fs.IntVar(&cfg.MaxMessage, "max-message", 32<<10, "largest client message in bytes")
	fs.IntVar(&cfg.MaxChannels, "max-channels", 200, "channels per UAID")
	fs.IntVar(&cfg.MaxUAIDs, "max-uaids", 10000, "UAIDs per multi-UAID connection")
	fs.IntVar(&cfg.Workers, "workers", 16, "goroutines carrying out client messages")
	gcPercent := fs.Int("gc-percent", 10, "Go GC target percentage (GOGC); low keeps idle-connection memory dense; -1 turns the GC off")
	fs.IntVar(&cfg.SocketSendBuffer, "socket-send-buffer", 0, "SO_SNDBUF of client sockets in bytes; 0 = kernel default")
	fs.IntVar(&cfg.EventLoops, "event-loops", 0, "gnet event loops; 0 = one per CPU")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the HTTP listener")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	_ = fs.Parse(os.Args[1:])
	if err := applyEnv(fs, os.Getenv); err != nil {
		return err
	}

	debug.SetGCPercent(*gcPercent)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	if *logFormat == "json" {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	}

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

// applyEnv sets every flag not given on the command line from
// PUSHD_<NAME>, if that variable is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "PUSHD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}
