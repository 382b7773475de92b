// Command pushbench runs pushd's benchmark scenarios against baselines
// started in the same run and prints the figures with the machine.
//
//	pushbench idle -pushd bin/pushd -conns 15000
//	pushbench cluster -pushd bin/pushd -devices 64 -replicas 1
//	pushbench failover -pushd bin/pushd -devices 32
//	pushbench hellos -pushd bin/pushd -parallel 64
//	pushbench holder -addr 127.0.0.1:0     (the baseline process idle starts)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/pushd/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pushbench idle|throughput|latency|cluster|failover|hellos|holder|baseline-http|baseline-parts [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "pushbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet("pushbench "+cmd, flag.ExitOnError)
	switch cmd {
	case "holder":
		addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
		_ = fs.Parse(args)
		return bench.RunHolder(ctx, *addr, os.Stdout)
	case "baseline-http":
		addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
		_ = fs.Parse(args)
		return bench.RunBaselineHTTP(ctx, *addr, os.Stdout)
	case "baseline-parts":
		wsAddr := fs.String("ws-addr", "127.0.0.1:0", "WebSocket listen `address`")
		httpAddr := fs.String("http-addr", "127.0.0.1:0", "HTTP listen `address`")
		dir := fs.String("dir", "", "`directory` for the store's temporary folder (default: the system's)")
		_ = fs.Parse(args)
		return bench.RunBaselineParts(ctx, *wsAddr, *httpAddr, *dir, os.Stdout)
	case "throughput":
		var cfg bench.ThroughputConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Clients, "clients", 64, "devices, each a closed PUT -> notification -> ack loop")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per phase")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		cfg.Progress = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		res, err := bench.RunThroughput(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("machine: %s\n", bench.Machine())
		fmt.Printf("closed loops: %d\n", res.Clients)
		fmt.Printf("bare fasthttp PUT handler: %.0f PUT/s\n", res.BaselinePuts)
		fmt.Printf("pushd PUT -> delivered -> acked (synced writes): %.0f cycles/s (%d errors)\n", res.PushdCycles, res.Errors)
		fmt.Printf("ratio pushd/baseline: %.2f\n", res.Ratio)
		fmt.Printf("parts baseline (the same cycle from fasthttp, gobwas/ws and Pebble alone, synced PUT writes): %.0f cycles/s, %.2f of the bare handler; pushd/parts %.2f\n",
			res.PartsCycles, res.PartsCycles/res.BaselinePuts, res.Ratio*res.BaselinePuts/res.PartsCycles)
		fmt.Printf("server CPU per operation: pushd %v per cycle, parts %v per cycle, baseline %v per PUT; load generator %v per pushd cycle, %v per parts cycle, %v per baseline PUT\n",
			res.PushdCPU, res.PartsCPU, res.BaselineCPU, res.SelfCPU, res.PartsSelfCPU, res.BaselineSelfCPU)
		fmt.Printf("bound set by the load generator where it shares the CPUs: %.2f (baseline server+client CPU per PUT / client CPU per pushd cycle)\n", res.ClientBound())
		return nil
	case "latency":
		var cfg bench.LatencyConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Devices, "devices", 1000, "connected devices the PUTs are spread over")
		fs.Float64Var(&cfg.Rate, "rate", 0, "PUTs per second; 0 = half the closed-loop maximum")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
		fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "open-loop time at the same rate before the measured time, not measured; 0 = 2s, negative = none")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		res, err := bench.RunLatency(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("machine: %s\n", bench.Machine())
		if res.MaxRate > 0 {
			fmt.Printf("closed-loop maximum: %.0f cycles/s\n", res.MaxRate)
		}
		fmt.Printf("open-loop rate: %.0f PUT/s over %d devices, %v warm-up then %v measured; %d answered 200, %d not (warm-up included); %d notifications matched\n", res.Rate, cfg.Devices, res.Warmup, cfg.Duration, res.Sent, res.Errors, res.Received)
		fmt.Printf("PUT -> notification: p50 %v  p99 %v  p99.9 %v  max %v\n", res.P50, res.P99, res.P999, res.Max)
		if res.StealPct >= 0 {
			fmt.Printf("CPU time stolen by the hypervisor meanwhile: %.1f%%\n", res.StealPct)
		}
		return nil
	case "cluster":
		var cfg bench.ClusterConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Devices, "devices", 64, "devices on node A with UAIDs A owns, each a closed PUT -> notification -> ack loop")
		fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured time per throughput phase")
		fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before the first phase, over both paths")
		fs.IntVar(&cfg.Rounds, "rounds", 2, "rounds of phases, each local then remote")
		fs.IntVar(&cfg.Replicas, "replicas", 1, "pushd -replicas")
		fs.IntVar(&cfg.Samples, "samples", 2000, "sequential single-client PUTs per latency phase")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		cfg.Progress = progress
		res, err := bench.RunCluster(ctx, cfg)
		if err != nil {
			return err
		}
		printHeader()
		fmt.Printf("2 nodes, -replicas %d; %d devices on node A, UAIDs owned by A; %d rounds\n", res.Replicas, res.Devices, res.Rounds)
		for _, p := range []struct {
			name string
			p    bench.ClusterPath
		}{{"local  (PUT to A, the owner)    ", res.Local}, {"remote (PUT to B, forwarded to A)", res.Remote}} {
			fmt.Printf("%s: %.0f cycles/s, nodes' CPU %v per cycle, sequential PUT p50 %v p99 %v p99.9 %v max %v (%d errors)\n",
				p.name, p.p.Cycles, p.p.CPU, p.p.P50, p.p.P99, p.p.P999, p.p.Max, p.p.Errors)
		}
		p50, p99, p999 := res.LatencyRatios()
		fmt.Printf("ratio remote/local: throughput %.2f, latency p50 %.2f p99 %.2f p99.9 %.2f, CPU per cycle %.2f\n",
			res.CycleRatio(), p50, p99, p999, float64(res.Remote.CPU)/float64(res.Local.CPU))
		return nil
	case "failover":
		var cfg bench.FailoverConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Devices, "devices", 32, "offline devices owned by the node that is killed, each with a PUT loop")
		fs.DurationVar(&cfg.Interval, "interval", 5*time.Millisecond, "least time between one device's PUTs")
		fs.DurationVar(&cfg.Before, "before", 2*time.Second, "PUT loops before the kill")
		fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "longest wait for the cluster and for recovery")
		fs.IntVar(&cfg.ConvergeNodes, "converge-nodes", 10, "size of the cluster timed for convergence; -1 skips it")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		cfg.Progress = progress
		res, err := bench.RunFailover(ctx, cfg)
		if err != nil {
			return err
		}
		printHeader()
		fmt.Printf("3 nodes, -replicas 2; %d offline devices owned by node-2, PUT loops against node-0; node-2 SIGKILLed\n", res.Devices)
		fmt.Printf("kill -> first 202: %v; kill -> every device had a 202: %v\n", res.FirstOK, res.AllOK)
		fmt.Printf("kill -> node-0 lists 2 members: %v\n", res.Members)
		fmt.Printf("answers to PUTs sent after the kill (status: count; -1 = no answer): %v\n", res.Answers)
		if res.ConvergeNodes > 0 {
			fmt.Printf("%d-node convergence (last start -> every node lists %d): %v (the last node served after %v)\n",
				res.ConvergeNodes, res.ConvergeNodes, res.Converge, res.LastReady)
		}
		return nil
	case "hellos":
		var cfg bench.HellosConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Parallel, "parallel", 64, "connections in flight, each slot a closed loop of whole connections")
		fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured time per phase")
		fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured time before each phase")
		fs.IntVar(&cfg.Rounds, "rounds", 2, "rounds of phases, each holder then pushd")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		cfg.Progress = progress
		res, err := bench.RunHellos(ctx, cfg)
		if err != nil {
			return err
		}
		printHeader()
		fmt.Printf("%d connections in flight, %d rounds; each connection: dial, upgrade, hello frame, [pushd: read hello answer], close\n", res.Parallel, res.Rounds)
		for _, s := range []struct {
			name string
			s    bench.HellosSide
		}{{"pushd hellos answered      ", res.Pushd}, {"bare holder upgrades       ", res.Holder}} {
			fmt.Printf("%s: %.0f/s (%d conns, %d errors); server CPU %v per conn, load generator %v per conn\n",
				s.name, s.s.Rate, s.s.Conns, s.s.Errors, s.s.ServerCPU, s.s.SelfCPU)
		}
		fmt.Printf("ratio pushd/holder: %.2f\n", res.Ratio)
		return nil
	case "idle":
		var cfg bench.IdleConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Conns, "conns", 15000, "idle connections")
		fs.IntVar(&cfg.Parallel, "parallel", 64, "connections set up at once")
		pushdArgs(fs, &cfg.PushdArgs)
		_ = fs.Parse(args)
		res, err := bench.RunIdle(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("machine: %s\n", bench.Machine())
		fmt.Printf("idle connections: %d\n", res.Conns)
		fmt.Printf("pushd RSS per connection (hello + 1 register): %.0f B (marginal %.0f B)\n", res.PushdPerConn, res.PushdMarginal)
		fmt.Printf("bare gnet+gobwas holder RSS per connection:    %.0f B (marginal %.0f B)\n", res.HolderPerConn, res.HolderMarginal)
		fmt.Printf("ratio pushd/holder: %.2f\n", res.Ratio)
		fmt.Printf("set-up rate: pushd %.0f conns/s to hello + register (synced), holder %.0f upgrades/s\n", res.PushdSetupRate, res.HolderSetupRate)
		return nil
	}
	return fmt.Errorf("unknown scenario %q", cmd)
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// printHeader prints the machine and the command line the figures come
// from.
func printHeader() {
	fmt.Printf("machine: %s\n", bench.Machine())
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
}

// pushdArgs binds the repeatable -pushd-arg flag (extra pushd flags) to
// dst.
func pushdArgs(fs *flag.FlagSet, dst *[]string) {
	fs.Func("pushd-arg", "extra pushd `flag` (repeatable)", func(s string) error {
		*dst = append(*dst, s)
		return nil
	})
}
