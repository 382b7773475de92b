// Package cluster is what makes several pushd nodes one service: it tells a
// node who the other nodes are, which of them owns a UAID, and how to reach
// them.
//
// # Pieces
//
// Membership (membership*.go) is gossip membership over hashicorp/memberlist:
// each node publishes its name and the addresses of its inter-node RPC,
// client WebSocket and HTTP listeners (Meta), gossip is encrypted with a key
// derived from the cluster secret, and a crashed node is declared dead within
// a few seconds. Membership reports the live member list, debounced, to one
// callback.
//
// Ring (ring*.go) places UAIDs on members by rendezvous hashing over a fixed
// number of partitions of the ring hash (shardstore.RingHash). A partition
// is a contiguous range of ring hashes and so of shardstore keys: when the
// ring changes, what a node hands over is a set of key-range scans. A join or
// leave moves only the partitions the joiner wins or the leaver held.
//
// The transport (transport*.go) carries operations between nodes.
//
// A single node is a cluster of one: its Membership lists only itself and
// its Ring gives it every partition.
//
// # Concurrency
//
// A Ring is immutable and safe for concurrent use; a membership change
// builds a new Ring, which the engine swaps in atomically. Membership methods
// are safe for concurrent use. Its OnChange callback runs on one goroutine,
// never concurrently with itself; memberlist's delegates (which run on its
// packet and stream handlers) never block and never call back into
// memberlist: they only mark the list changed and wake that goroutine.
package cluster
