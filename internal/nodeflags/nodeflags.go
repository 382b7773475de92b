// Package nodeflags binds the command-line flags of a pushd node (pushd and
// pushrelay) to an engine.Config, reads PUSHD_<NAME> environment variables
// for flags not given, and applies the process-wide settings (GC target,
// logger). Only commands import it.
package nodeflags

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/shardstore"
)

// Options are a node's flags once parsed.
type Options struct {
	Config engine.Config

	logLevel  *string
	logFormat *string
}

// Bind defines the node flags on fs, with defaults dataDir for -data-dir.
func Bind(fs *flag.FlagSet, dataDir string) *Options {
	o := &Options{}
	fs.StringVar(&o.Config.WSAddr, "ws-addr", ":8080", "client WebSocket listener `address`")
	fs.StringVar(&o.Config.HTTPAddr, "http-addr", ":8081", "ingest, REST, /health and /metrics listener `address`")
	fs.StringVar(&o.Config.DataDir, "data-dir", dataDir, "`directory` of the Pebble shard and the token key file")
	fs.StringVar(&o.Config.EndpointURL, "endpoint-url", "http://localhost:8081", "public base `URL` of push endpoints")
	fs.StringVar(&o.Config.TokenKeys, "token-keys", "", "comma-separated endpoint token `keys` (base64url or hex, 32 bytes; the first seals); empty: DATA-DIR/token.keys, created on first start")
	fs.DurationVar(&o.Config.LockWait, "lock-wait", 250*time.Millisecond, "how long a PUT waits for an in-flight UPDATE's ack before 503")
	fs.DurationVar(&o.Config.AckTimeout, "ack-timeout", 15*time.Second, "how long an UPDATE stays in flight without an ack")
	fs.Float64Var(&o.Config.EndpointRate, "endpoint-rate", 1000, "PUTs per second one endpoint may take before 429; -1 = unlimited")
	fs.Float64Var(&o.Config.SourceRate, "source-rate", 0, "PUTs per second one source IP may send before 429; 0 = unlimited")
	fs.IntVar(&o.Config.RecordCacheEntries, "record-cache", shardstore.DefaultRecordCacheEntries, "entries in the store's cache of hot channel records, which spares PUTs and acks their store reads; -1 turns it off")
	fs.Uint64Var(&o.Config.MemTableSize, "memtable-size", 64<<20, "store memtable size in bytes; larger means fewer flushes in the PUT latency tail, filled only as written")
	fs.DurationVar(&o.Config.KickInterval, "kick-interval", 30*time.Second, "least time between two wake-ups of one UAID")
	fs.Func("kick-udp-networks", "comma-separated `CIDRs` UDP wake-ups may be sent to; empty: UDP kicks refused", prefixList(&o.Config.KickUDPNetworks))
	fs.Func("relay-networks", "comma-separated `CIDRs` multi-UAID (relay) hellos are accepted from; empty: from anywhere", prefixList(&o.Config.RelayNetworks))
	fs.Func("kick-webhook-prefixes", "comma-separated URL `prefixes` webhook wake-ups may POST to; empty: webhook kicks refused", commaList(&o.Config.KickWebhookPrefixes))
	fs.IntVar(&o.Config.MaxConns, "max-conns", 0, "client connection cap; 0 = derived from the open-files limit")
	fs.IntVar(&o.Config.SetupLimit, "max-setup", 0, "connections in set-up (first hello received, not yet answered) at which the node stops accepting until some finish; 0 = adaptive (what the node answers in half -hello-timeout, at least 1024), -1 = no bound")
	fs.DurationVar(&o.Config.HandshakeTimeout, "handshake-timeout", 5*time.Second, "WebSocket handshake deadline after accept")
	fs.DurationVar(&o.Config.HelloTimeout, "hello-timeout", 10*time.Second, "hello deadline after the upgrade; also how long a received hello may wait for its answer (1013 beyond)")
	fs.DurationVar(&o.Config.PingInterval, "ping-interval", 5*time.Minute, "WebSocket ping interval on quiet connections")
	fs.DurationVar(&o.Config.PongTimeout, "pong-timeout", 30*time.Second, "how long a pong may take before the connection is dropped")
	fs.DurationVar(&o.Config.MinPingInterval, "min-ping-interval", 20*time.Second, "closest client pings may come before close 4774")
	fs.IntVar(&o.Config.MaxMessage, "max-message", 32<<10, "largest client message in bytes")
	fs.IntVar(&o.Config.MaxChannels, "max-channels", 200, "channels per UAID")
	fs.IntVar(&o.Config.MaxUAIDs, "max-uaids", 10000, "UAIDs per multi-UAID connection")
	fs.IntVar(&o.Config.Workers, "workers", 16, "goroutines carrying out client messages")
	fs.IntVar(&o.Config.WaitLane, "wait-lane", 1024, "client messages that may wait on another machine (the UAID's owner node, an upstream) carried out at once off -workers, on goroutines of their own; -1 = none")
	fs.IntVar(&o.Config.GCPercent, "gc-percent", 10, "Go GC target percentage (GOGC); low keeps idle-connection memory dense; -1 turns the GC off; 0 = 100")
	fs.IntVar(&o.Config.GCPercentBusy, "gc-percent-busy", 400, "Go GC target while the node delivers 100 or more notifications a second (back to -gc-percent after 5 s below); fewer GC cycles keep them out of the delivery latency tail; 0 = always -gc-percent")
	fs.IntVar(&o.Config.SocketSendBuffer, "socket-send-buffer", 0, "SO_SNDBUF of client sockets in bytes; 0 = kernel default")
	fs.IntVar(&o.Config.EventLoops, "event-loops", 0, "gnet event loops; 0 = one per CPU")
	fs.StringVar(&o.Config.NodeName, "node-name", "", "unique node `name` in the cluster; empty: host name + \":\" + client listener port")
	fs.StringVar(&o.Config.ClusterAddr, "cluster-addr", "", "gossip (memberlist) bind `host:port`; empty: standalone")
	fs.StringVar(&o.Config.ClusterRPCAddr, "cluster-rpc-addr", "", "listener `host:port` for calls between nodes; empty: the -cluster-addr host, any port")
	fs.Func("join", "comma-separated gossip `host:port` of members to join; empty: start a cluster", commaList(&o.Config.Join))
	fs.IntVar(&o.Config.Replicas, "replicas", 2, "nodes that must hold a version durably before 200/202 (effective: min(replicas, members))")
	fs.DurationVar(&o.Config.HandoffGrace, "handoff-grace", 30*time.Second, "how long records of partitions handed to other nodes are kept before deletion")
	fs.DurationVar(&o.Config.UAIDTTL, "uaid-ttl", 0, "how long a UAID may go unused (no hello, register, poll or connection) before it is dropped with its channels and pending versions; 0 = never")
	fs.StringVar(&o.Config.ClusterKey, "cluster-key", "", "cluster `secret` (at least 16 bytes; prefer PUSHD_CLUSTER_KEY): encrypts gossip, authenticates calls between nodes, and derives the token key when -token-keys is empty")
	fs.BoolVar(&o.Config.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the HTTP listener")
	o.logLevel = fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	o.logFormat = fs.String("log-format", "text", "log `format`: text or json")
	return o
}

// prefixList returns a flag setter that appends the CIDRs of a
// comma-separated value to dst.
func prefixList(dst *[]netip.Prefix) func(string) error {
	return func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return err
			}
			*dst = append(*dst, p)
		}
		return nil
	}
}

// commaList returns a flag setter that appends the non-empty items of a
// comma-separated value to dst.
func commaList(dst *[]string) func(string) error {
	return func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				*dst = append(*dst, f)
			}
		}
		return nil
	}
}

// Parse parses args, then fills every flag not given from PUSHD_<NAME>
// (upper case, dashes as underscores), then sets the GC target and builds
// the logger into Config.
func (o *Options) Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if o.Config.GCPercent == 0 {
		o.Config.GCPercent = 100 // as engine.Config reads it
	}
	debug.SetGCPercent(o.Config.GCPercent)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	if *o.logFormat == "json" {
		o.Config.Logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	} else {
		o.Config.Logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	}
	return nil
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
