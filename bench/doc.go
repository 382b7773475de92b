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
//     fasthttp PUT handler answering the same client.
//
// Functions here block; each Run call owns the processes it starts and
// stops them before it returns.
package bench
