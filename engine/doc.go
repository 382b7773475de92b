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
// carries out mailboxes one connection at a time, in order. Replies and
// notifications go back through gnet's AsyncWrite.
//
// Owner operations (put, hello, register, unregister, ack, disconnect)
// take the UAID's slot in the striped lock table (lock.go) and then touch the
// shard store (shardstore). A single node owns every UAID; the cluster adds
// routing in front of the same operations.
//
// # Concurrency
//
// Node methods are safe for concurrent use. Lock order, outermost first:
//
//	uaid slot (lockTable: held flag, waited on, never a mutex held across I/O)
//	  -> lockTable stripe mutex
//	  -> hub stripe mutex
//	  -> client.mu (mailbox)
//	  -> connList shard mutex
//
// No mutex is held across disk I/O, network I/O or a channel send that can
// block. Per-connection fields are owned as documented on client.
package engine
