// Package engine is a pushd node's edges and its owner logic: the gnet
// client listener that speaks SimplePush over WebSocket, the fasthttp
// listener for app-server PUTs and operators, and the per-UAID lock that
// orders everything that happens to one UAID.
//
// # Shape
//
// A Node accepts client sockets with a plain net.Listener (so that running
// out of file descriptors is an error it can wait out, not the end of the
// event engine) and enrolls each one into gnet event loops. The loops parse
// handshakes and frames (internal/wsframe) and decode messages
// (internal/protocol); they never wait on disk or network. A decoded message
// goes into its connection's bounded mailbox, and a fixed pool of workers
// carries out mailboxes one connection at a time, in order. A message that
// may wait on another machine (a call to its UAID's owner or replicas, an
// upstream's register) is handed, with the rest of its mailbox, to the
// waiting lane (lane.go), bounded goroutines of their own, so that a stuck
// owner does not take the workers from every other connection. Either way
// one goroutine at a time drains a mailbox. Replies and
// notifications go back through gnet's AsyncWrite.
//
// Owner operations (put, hello, register, unregister, ack, disconnect)
// take the UAID's slot in the striped lock table (lock.go) and then touch the
// shard store (shardstore). Acks and disconnects do not wait for a held
// slot: they are queued on it and carried out, in order, by the goroutine
// the holder hands the slot to when it releases it. route.go carries each
// one to the UAID's owner on
// the ring (cluster.go): in place when that is this node, through a call
// over cluster.Transport (rpc.go) otherwise. A standalone node is a cluster
// of one whose ring holds only itself.
// The expiry sweep (expire.go) takes a UAID's slot too, one at a time,
// to touch or drop it.
//
// # Cluster
//
// The owner names a UAID's connection with a holder (holder.go): a client
// of this node, or (node, connection id). The node holding a connection
// keeps it in its edge table (edges.go), through which owners elsewhere
// send UPDATEs (queued in the connection's mailbox, so they follow the
// message being carried out) and close orders, and from which a node that
// takes UAIDs over learns their connections. Writes are replicated to the
// rest of the UAID's preference list before they are answered. Member
// list changes are put in force on the membership's goroutine: fetch the
// records of partitions gained (owner operations on them wait), take
// their presence, drop presence and flights of partitions lost, push
// records to new holders, and drop handed partitions after a grace.
//
// # Concurrency
//
// Node methods are safe for concurrent use. Lock order, outermost first:
//
//	uaid slot (lockTable: held flag, waited on, never a mutex held across I/O)
//	  -> lockTable stripe mutex
//	  -> hub stripe mutex
//	  -> edgeTable stripe mutex
//	  -> client.mu (mailbox)
//	  -> connList shard mutex
//
// No mutex is held across disk I/O, network I/O or a channel send that can
// block. A slot (not a mutex) is held across the store write, the calls to
// replicas and the deliver call to a connection's node; those calls never
// take a slot on the node they reach, except replica imports, which take
// the UAID's slot there (an owner never replicates to itself). Several
// slots are taken together only by imports, in UAID order. A queued
// operation runs with the slot held, like any other. Per-connection
// fields are owned as documented on client.
package engine
