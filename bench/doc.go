// Package bench measures pushd against baselines started in the same run,
// so that its figures are ratios that hold on a shared, noisy machine.
//
// Each scenario is a Config plus a Run function; the package owns no
// mutable globals, and cmd/pushbench only binds flags. Scenarios start
// pushd (and the baselines) as separate processes from a built binary and
// drive them over loopback:
//
//   - Idle: node RSS per idle connection after hello + one register,
//     against a bare gnet + gobwas/ws holder.
//   - Throughput: PUT -> delivered -> acked per second against a bare
//     fasthttp PUT handler answering the same client, and against the
//     same cycle made of the design's pieces alone (the parts baseline).
//   - Latency: PUT -> notification percentiles, open loop, at half the
//     maximum rate.
//   - Cluster: the PUT path through a non-owner node against the owner's
//     own, in alternating phases of one run.
//   - Hellos: connections per second from dial to hello answered
//     against the holder's dial to upgraded, same client, alternating
//     phases of one run.
//   - Failover: how long a killed node's UAIDs go unserved, and how long
//     ten nodes take to agree on their member list.
//
// Functions here block; each Run call owns the processes it starts and
// stops them before it returns.
package bench
