// Command pushbench runs pushd's benchmark scenarios against baselines
// started in the same run and prints the figures with the machine.
//
//	pushbench idle -pushd bin/pushd -conns 15000
//	pushbench holder -addr 127.0.0.1:0     (the baseline process idle starts)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushd/pushd/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pushbench idle|throughput|latency|holder|baseline-http [flags]")
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
	case "throughput":
		var cfg bench.ThroughputConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Clients, "clients", 64, "devices, each a closed PUT -> notification -> ack loop")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per phase")
		fs.Func("pushd-arg", "extra pushd `flag` (repeatable)", func(s string) error {
			cfg.PushdArgs = append(cfg.PushdArgs, s)
			return nil
		})
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
		fmt.Printf("server CPU per operation: pushd %v per cycle, baseline %v per PUT; load generator %v per pushd cycle\n", res.PushdCPU, res.BaselineCPU, res.SelfCPU)
		return nil
	case "latency":
		var cfg bench.LatencyConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Devices, "devices", 1000, "connected devices the PUTs are spread over")
		fs.Float64Var(&cfg.Rate, "rate", 0, "PUTs per second; 0 = half the closed-loop maximum")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
		fs.Func("pushd-arg", "extra pushd `flag` (repeatable)", func(s string) error {
			cfg.PushdArgs = append(cfg.PushdArgs, s)
			return nil
		})
		_ = fs.Parse(args)
		res, err := bench.RunLatency(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("machine: %s\n", bench.Machine())
		if res.MaxRate > 0 {
			fmt.Printf("closed-loop maximum: %.0f cycles/s\n", res.MaxRate)
		}
		fmt.Printf("open-loop rate: %.0f PUT/s over %d devices; %d answered 200, %d not; %d notifications matched\n", res.Rate, cfg.Devices, res.Sent, res.Errors, res.Received)
		fmt.Printf("PUT -> notification: p50 %v  p99 %v  p99.9 %v  max %v\n", res.P50, res.P99, res.P999, res.Max)
		return nil
	case "idle":
		var cfg bench.IdleConfig
		fs.StringVar(&cfg.PushdBin, "pushd", "bin/pushd", "pushd `binary`")
		fs.IntVar(&cfg.Conns, "conns", 15000, "idle connections")
		fs.IntVar(&cfg.Parallel, "parallel", 64, "connections set up at once")
		fs.Func("pushd-arg", "extra pushd `flag` (repeatable)", func(s string) error {
			cfg.PushdArgs = append(cfg.PushdArgs, s)
			return nil
		})
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
