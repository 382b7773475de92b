package engine

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Config configures a Node. The zero value of every field means the default
// named in its comment; New never mutates the caller's Config.
type Config struct {
	// WSAddr is the client WebSocket listener. Zero means ":8080".
	WSAddr string
	// HTTPAddr is the ingest, REST, /health and /metrics listener. Zero
	// means ":8081".
	HTTPAddr string
	// DataDir holds the Pebble shard and the token key file. Zero means
	// "./data".
	DataDir string
	// EndpointURL is the public base URL of push endpoints. Zero means
	// "http://localhost:8081".
	EndpointURL string
	// TokenKeys are comma-separated endpoint token keys, the first seals
	// and all open (rotation). Zero means the keys in DataDir/token.keys,
	// created on first start.
	TokenKeys string

	// LockWait is how long a PUT waits for an in-flight UPDATE of its UAID
	// to be acknowledged before it is answered 503. Zero means 250ms.
	LockWait time.Duration
	// AckTimeout ends a UAID's in-flight state when the client does not
	// acknowledge. Zero means 15s.
	AckTimeout time.Duration
	// HandshakeTimeout bounds the WebSocket opening handshake, counted from
	// the TCP accept. Zero means 5s.
	HandshakeTimeout time.Duration
	// HelloTimeout bounds the wait for hello after the upgrade, and the
	// wait of a received hello for its answer (1013 beyond). Zero means
	// 10s.
	HelloTimeout time.Duration
	// PingInterval is how often the server sends WebSocket pings to an
	// otherwise quiet connection. Zero means 5m.
	PingInterval time.Duration
	// PongTimeout is how long a pong may take before the connection is
	// closed as dead. Zero means 30s.
	PongTimeout time.Duration
	// MinPingInterval is the closest two client pings may be before the
	// connection is closed with 4774. Zero means 20s.
	MinPingInterval time.Duration
	// ClientPing is the ping interval, in seconds, told to clients in the
	// hello reply. Zero means 300.
	ClientPing int

	// EndpointRate limits PUTs per second to one endpoint (429 beyond).
	// Zero means 1000; a negative value means no limit.
	EndpointRate float64
	// SourceRate limits PUTs per second from one source IP address. Zero
	// means no limit.
	SourceRate float64

	// MemTableSize is the store's memtable size in bytes. Zero means
	// shardstore.DefaultMemTableSize.
	MemTableSize uint64

	// RecordCacheEntries bounds the store's cache of hot channel records.
	// Zero means shardstore.DefaultRecordCacheEntries; negative turns it off.
	RecordCacheEntries int

	// StoreFS, if set, is the filesystem the store lives on instead of the
	// disk (tests hold or fail its syncs).
	StoreFS vfs.FS

	// KickInterval is the least time between two kicks of one UAID. Zero
	// means 30s.
	KickInterval time.Duration
	// KickUDPNetworks are the networks UDP wake-ups may be sent to (the
	// mobile networks whose devices this node serves). Empty means none:
	// UDP kick targets are refused, so clients cannot aim the node's
	// datagrams at arbitrary hosts.
	KickUDPNetworks []netip.Prefix
	// KickWebhookPrefixes are the URL prefixes webhook kicks may POST to.
	// Empty means webhook targets are refused.
	KickWebhookPrefixes []string
	// KickDrivers are proprietary kick drivers by target type. Nil means
	// none.
	KickDrivers map[string]KickDriver

	// MaxConns caps client WebSocket connections. Zero means derived from
	// the open-files limit minus a reserve (see FDBudget).
	MaxConns int
	// SetupLimit bounds the connections in set-up (first hello received,
	// not yet answered): at the bound the node stops accepting until some
	// finish, and new connections wait in the listen queue. Zero
	// means adaptive: what the node answers in half the hello timeout at
	// its recent hello rate, at least 1024 (setupGate). Negative means no
	// bound.
	SetupLimit int
	// MaxMessage bounds one client message. Zero means 32 KiB.
	MaxMessage int
	// MaxChannels bounds channels per UAID. Zero means 200.
	MaxChannels int
	// RelayNetworks are the networks multi-UAID hellos (relays) are
	// accepted from; a multi-UAID hello from elsewhere is refused (401,
	// close 1008). Empty means from anywhere.
	RelayNetworks []netip.Prefix
	// MaxUAIDs bounds the UAIDs of one multi-UAID connection. Zero means
	// 10,000.
	MaxUAIDs int
	// MaxOutbound is the most bytes queued to one client before it is
	// disconnected as too slow. Zero means 256 KiB.
	MaxOutbound int
	// SocketSendBuffer sets SO_SNDBUF on client sockets, bounding the kernel
	// memory a connection that does not read can pin. Zero means the
	// kernel's default (autotuned).
	SocketSendBuffer int
	// GCPercent and GCPercentBusy are the Go GC targets the node switches
	// between (gcTuner): GCPercent while it is idle, GCPercentBusy while it
	// delivers at least 100 notifications a second. The GC target is the
	// process's, so the node sets it only when GCPercentBusy is positive
	// and differs from GCPercent, and one node per process should: a zero
	// GCPercentBusy, the default, leaves the target alone. Zero GCPercent
	// means 100 (Go's default); negative means the GC is off, and the node
	// then never switches it on.
	GCPercent     int
	GCPercentBusy int

	// Workers is the number of goroutines that carry out client messages
	// off the event loops. Zero means 16: enough to share store fsyncs
	// among concurrent registers; every worker costs a goroutine stack and,
	// while blocked on the disk, an OS thread.
	Workers int
	// WaitLane bounds the client messages that may wait on another
	// machine (a call to the UAID's owner node or its replicas, an
	// upstream's register)
	// carried out at once off the workers, on goroutines of their own, so
	// that a stuck owner or upstream does not take the workers from every
	// other connection. Zero means 1024; negative means none: all messages
	// run on the workers.
	WaitLane int
	// EventLoops is the number of gnet event loops. Zero means one per CPU.
	EventLoops int

	// Pprof serves Go's profiles under /debug/pprof/ on the HTTP
	// listener. Zero means off.
	Pprof bool

	// Upstream makes the node a PUSH RELAY of that cluster (see Upstream).
	// Nil means a node of its own.
	Upstream Upstream

	// NodeName names the node in its cluster. Zero means the host name and
	// the client listener's port.
	NodeName string
	// ClusterAddr is the gossip (memberlist) address, host:port. Zero
	// means a standalone node: a cluster of one.
	ClusterAddr string
	// ClusterRPCAddr is the listener for calls between nodes. Zero means
	// ClusterAddr's host and a free port (members learn it by gossip).
	ClusterRPCAddr string
	// Join lists gossip addresses of members to join. Zero means this node
	// starts the cluster.
	Join []string
	// Replicas is how many nodes of a UAID's preference list hold its
	// records; a version is answered 200/202 only when it is durable on
	// min(Replicas, members) of them. Zero means 2.
	Replicas int
	// ClusterKey is the cluster secret (at least 16 bytes): it encrypts
	// gossip and authenticates calls between nodes. Required with
	// ClusterAddr. When TokenKeys is zero, the endpoint token key is
	// derived from it, so that every node opens every node's endpoints.
	ClusterKey string
	// HandoffGrace is how long a node keeps the records of partitions it
	// handed to other nodes before it deletes them. Zero means 30s.
	HandoffGrace time.Duration

	// UAIDTTL is how long a UAID may go unused (no hello, register or
	// poll, and no connection) before its owner drops it with all its
	// records, pending versions included; its endpoints then answer 404.
	// Nodes holding a copy of a UAID they do not own drop it when its
	// owner does, or after twice UAIDTTL if they miss that. The least is
	// 1s. Zero (or negative) means never.
	UAIDTTL time.Duration

	// Logger receives the node's structured logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	if c.WSAddr == "" {
		c.WSAddr = ":8080"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8081"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.EndpointURL == "" {
		c.EndpointURL = "http://localhost:8081"
	}
	def(&c.LockWait, 250*time.Millisecond)
	def(&c.AckTimeout, 15*time.Second)
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.HelloTimeout, 10*time.Second)
	def(&c.PingInterval, 5*time.Minute)
	def(&c.PongTimeout, 30*time.Second)
	def(&c.MinPingInterval, 20*time.Second)
	defInt(&c.ClientPing, 300)
	defInt(&c.MaxMessage, 32<<10)
	defInt(&c.MaxChannels, 200)
	defInt(&c.MaxUAIDs, 10000)
	defInt(&c.MaxOutbound, 256<<10)
	defInt(&c.Workers, 16)
	if c.WaitLane == 0 { // not defInt: negative (no lane) stays
		c.WaitLane = 1024
	}
	if c.GCPercent == 0 { // not defInt: negative (GC off) stays
		c.GCPercent = 100
	}
	defInt(&c.Replicas, 2)
	def(&c.HandoffGrace, 30*time.Second)
	def(&c.KickInterval, 30*time.Second)
	if c.EndpointRate == 0 {
		c.EndpointRate = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for len(c.EndpointURL) > 0 && c.EndpointURL[len(c.EndpointURL)-1] == '/' {
		c.EndpointURL = c.EndpointURL[:len(c.EndpointURL)-1]
	}
	return c
}
