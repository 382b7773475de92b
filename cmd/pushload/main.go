// Command pushload is pushd's load tester: it opens many simulated
// devices against a node or a cluster, runs a scenario and reports.
//
//	pushload -ws ws://127.0.0.1:8080 -conns 5000 -ramp 2000 -rate 2000 -duration 10s -report /tmp/r
//	pushload -ws 127.0.0.1:8080 -scenario hello-rate -duration 10s
//
// All the work is in package loadtest; this command binds flags, prints
// the progress line and a summary, and writes the report.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/pushd/loadtest"
)

// hidden flags are left out of -help: the worker side of a multi-process
// run, and a test hook.
var hidden = map[string]bool{"worker": true, "max-conns-per-process": true}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var cfg loadtest.Config
	fs := flag.NewFlagSet("pushload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := func(dst *[]string) func(string) error {
		return func(s string) error {
			*dst = nil
			for _, v := range strings.Split(s, ",") {
				if v = strings.TrimSpace(v); v != "" {
					*dst = append(*dst, v)
				}
			}
			return nil
		}
	}
	cfg.WS = []string{"ws://127.0.0.1:8080"}
	cfg.HTTP = []string{"http://127.0.0.1:8081"}
	fs.Func("ws", "comma-separated WebSocket `targets` (ws://host:port or host:port) (default ws://127.0.0.1:8080)", list(&cfg.WS))
	fs.Func("http", "comma-separated ingest `targets` (http://host:port) used with -endpoint-rewrite (default http://127.0.0.1:8081)", list(&cfg.HTTP))
	fs.BoolVar(&cfg.EndpointRewrite, "endpoint-rewrite", false, "send PUTs to the -http targets instead of the host in each endpoint URL")
	scenario := fs.String("scenario", "steady", "`name`: steady, storm, idle or hello-rate")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to ramp")
	fs.Float64Var(&cfg.Ramp, "ramp", 1000, "connections started per second")
	fs.IntVar(&cfg.Channels, "channels", 1, "channels each connection registers")
	fs.DurationVar(&cfg.Hold, "hold", 2*time.Second, "idle time after the ramp")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "PUTs per second (steady), open loop")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "PUT phase (steady) or whole run (hello-rate)")
	fs.TextVar(&cfg.Ack, "ack", loadtest.AckMode{}, "how devices ack: now, delay=<dur>, never or fraction=<0..1>")
	fs.Float64Var(&cfg.StormPct, "storm-pct", 10, "percent of connections the storm drops and reconnects")
	fs.Float64Var(&cfg.MinEstablished, "min-established", 0.99, "fraction of -conns that must be established for the run to pass (negative: none)")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "dials in flight per process (hello-rate: connections in flight)")
	fs.IntVar(&cfg.PutConns, "put-conns", 256, "PUTs outstanding at once")
	fs.IntVar(&cfg.SetupRetries, "setup-retries", 0, "times a device whose set-up was refused or closed dials again, after a jittered back-off doubling from 1s to 16s")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 30*time.Second, "longest wait for a connection's dial, hello and registers")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "longest wait for notifications after the last PUT")
	fs.IntVar(&cfg.EventLoops, "event-loops", 0, "gnet event loops per process; 0 = one per CPU")
	reportDir := fs.String("report", "", "write report.json and report.html into `dir`")
	worker := fs.Bool("worker", false, "run as a worker process (protocol on stdin/stdout)")
	fs.IntVar(&cfg.MaxConnsPerProcess, "max-conns-per-process", 0, "connections per process before workers start; 0 = open-files limit less a reserve")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *worker {
		if err := loadtest.RunWorker(ctx, os.Stdin, stdout, log); err != nil {
			fmt.Fprintln(stderr, "pushload worker:", err)
			return 1
		}
		return 0
	}
	cfg.Scenario = loadtest.Scenario(*scenario)
	cfg.Logger = log
	cfg.CommandLine = append([]string{"pushload"}, args...)
	cfg.Progress = progressPrinter(stderr)

	rep, err := loadtest.Run(ctx, cfg)
	if isTerminal(stderr) {
		fmt.Fprintln(stderr)
	}
	if rep == nil {
		fmt.Fprintln(stderr, "pushload:", err)
		return 2
	}
	summary(stdout, rep)
	if *reportDir != "" {
		if werr := rep.Write(*reportDir); werr != nil {
			fmt.Fprintln(stderr, "pushload:", werr)
			return 1
		}
		fmt.Fprintf(stdout, "report: %s/report.json, %s/report.html\n", *reportDir, *reportDir)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pushload: FAILED:", err)
		return 1
	}
	return 0
}

// progressPrinter rewrites one line in place on a terminal and prints a
// line per second otherwise.
func progressPrinter(w io.Writer) func(loadtest.Progress) {
	if isTerminal(w) {
		return func(p loadtest.Progress) { fmt.Fprintf(w, "\r\033[K%s", p) }
	}
	return func(p loadtest.Progress) { fmt.Fprintln(w, p) }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func summary(w io.Writer, r *loadtest.Report) {
	fmt.Fprintf(w, "machine: %d x %s, %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Memory, r.Machine.Go)
	fmt.Fprintf(w, "scenario %s, %d process(es), %.1fs\n", r.Scenario, r.Processes, r.Elapsed)
	fmt.Fprintf(w, "connections: target %d, established %d, failed %d, set-up retries %d, peak open %d\n",
		r.Connections.Target, r.Connections.Established, r.Connections.Failed, r.Connections.Retries, r.Connections.PeakOpen)
	if r.Hellos.PerSecond > 0 {
		fmt.Fprintf(w, "hellos: %d ok, %d failed, %.0f/s\n", r.Hellos.OK, r.Hellos.Failed, r.Hellos.PerSecond)
	}
	if r.Puts.Sent > 0 {
		fmt.Fprintf(w, "puts: sent %d of %d planned, %.0f/s, status %v, errors %d\n", r.Puts.Sent, r.Puts.Planned, r.Puts.PerSecond, r.Puts.Status, r.Puts.Errors)
		fmt.Fprintf(w, "notifications: %d messages, %d versions, %d duplicates, %d PUTs superseded by a newer version, %d missing; acks %d\n",
			r.Notifications.Received, r.Notifications.Versions, r.Notifications.Duplicates,
			r.Notifications.Superseded, r.Notifications.Missing, r.Acks.Sent)
	}
	if r.Storm != nil {
		fmt.Fprintf(w, "storm: dropped %d, reconnected %d, failed %d, UAID resets %d\n", r.Storm.Dropped, r.Storm.Reconnected, r.Storm.Failed, r.Storm.UAIDResets)
	}
	if r.Memory.Conns > 0 {
		fmt.Fprintf(w, "load generator RSS per connection: %.0f B over %d connections\n", r.Memory.BytesPerConn, r.Memory.Conns)
	}
	for _, k := range []string{"connect", "hello", "register", "put_response", "put_to_notification", "reconnect"} {
		if s := r.LatencyMs[k]; s.Count > 0 {
			fmt.Fprintf(w, "%-20s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n=%d)\n", k, s.P50, s.P90, s.P99, s.P999, s.Max, s.Count)
		}
	}
	if len(r.Closes) > 0 {
		fmt.Fprintf(w, "closes by server: %v\n", r.Closes)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors: %v\n", r.Errors)
	}
}

// usage prints the flags other than the hidden ones.
func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprintln(out, "usage: pushload [flags]")
	fs.VisitAll(func(f *flag.Flag) {
		if hidden[f.Name] {
			return
		}
		name, text := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(out, "%s\n    \t%s", line, text)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
}
