// Package loadtest is pushd's load tester: it opens many simulated devices
// against a node or a cluster, drives them through a scenario, and reports
// what it measured as JSON and as a self-contained HTML page.
//
// A run is a Config plus Run; the package owns no mutable globals and
// cmd/pushload only binds flags. Scenarios:
//
//   - steady: ramp connections (hello + registers), hold them idle, then
//     PUT open loop at a fixed rate to random channels; every PUT has an
//     intended send time and latencies count from it, so a stalled server
//     cannot hide its stall (coordinated omission). A notification
//     settles its own PUT and every earlier outstanding PUT of its
//     channel, which the server may have answered 200 without a
//     notification when two PUTs reached it out of order; those count
//     as superseded, not missing.
//   - storm: ramp, then drop a share of the connections at once and
//     reconnect them with their UAID and channel IDs.
//   - idle: ramp and hold.
//   - hello-rate: connect and say hello as fast as possible.
//
// Devices are event driven: gnet v2's client side owns every socket, and
// the WebSocket client framing (masked frames, the opening handshake) is
// done by hand on gnet's buffers, so an idle device costs a few hundred
// bytes and no goroutine. The bench package holds the same-run baseline
// comparisons; this package measures one target as an operator would.
//
// When a run needs more sockets than one process may open, Run starts
// worker processes of the running executable (RunWorker is their side)
// and merges their results: counts add, HDR histograms merge.
//
// Concurrency: Run may be called from any goroutine; Config.Progress is
// called from one goroutine at a time, with the aggregate's lock held, and
// must not block for long. A device (conn) belongs to its gnet event loop;
// other goroutines reach it only through the loop (Execute, AsyncWrite).
//
// Locks, each guarding the fields grouped with it: local.settle (a setup
// phase's bookkeeping) may be held while taking recorder.mu (error
// counts), never the other way round; aggregate.mu, recorder.mu,
// histPair.mu, local.prefixes, ackQueue.mu, workerCoord.mu and
// barrier.mu are leaves (nothing else is taken under them).
package loadtest
