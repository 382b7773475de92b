package loadtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/loadtest"
)

// These tests run the load tester against a real node in this process and
// hold its report against what the node counted.

// config is a short run against n; endpoints come back with the node's
// default endpoint URL, so PUTs are sent to its HTTP address.
func config(n *engine.Node, scenario loadtest.Scenario) loadtest.Config {
	return loadtest.Config{
		WS:              []string{"ws://" + n.WSAddr().String() + "/"},
		HTTP:            []string{"http://" + n.HTTPAddr().String()},
		EndpointRewrite: true,
		Scenario:        scenario,
		Conns:           300,
		Ramp:            1500,
		Channels:        2,
		Rate:            400,
		Duration:        2 * time.Second,
		SetupTimeout:    20 * time.Second,
		EventLoops:      2,
		CommandLine:     []string{"pushload", "-test"},
	}
}

// node returns the node's counters minus a baseline taken earlier.
func delta(after, before map[string]float64) func(series string) uint64 {
	return func(series string) uint64 { return uint64(after[series] - before[series]) }
}

func TestSteadyMatchesNode(t *testing.T) {
	n := startNode(t, nil)
	before := metrics(t, n)
	cfg := config(n, loadtest.ScenarioSteady)
	var ticks int
	cfg.Progress = func(loadtest.Progress) { ticks++ }
	rep, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v (report %+v)", err, rep)
	}

	if rep.Connections.Target != 300 || rep.Connections.Established != 300 || rep.Connections.Failed != 0 {
		t.Fatalf("connections %+v", rep.Connections)
	}
	if rep.Registers.OK != 600 || rep.Hellos.OK != 300 {
		t.Fatalf("hellos %+v registers %+v", rep.Hellos, rep.Registers)
	}
	if rep.Puts.Planned != 800 || rep.Puts.Sent != 800 || rep.Puts.Errors != 0 {
		t.Fatalf("puts %+v", rep.Puts)
	}
	var answered uint64
	for _, v := range rep.Puts.Status {
		answered += v
	}
	if answered != rep.Puts.Sent {
		t.Fatalf("statuses %v add up to %d, sent %d", rep.Puts.Status, answered, rep.Puts.Sent)
	}
	if rep.Puts.Status["200"] == 0 || rep.Notifications.Versions == 0 || rep.Notifications.Versions > rep.Puts.Status["200"] {
		t.Fatalf("200s %d, versions received %d", rep.Puts.Status["200"], rep.Notifications.Versions)
	}
	notif := rep.Notifications
	if rep.LatencyMs["put_to_notification"].Count != int64(notif.Versions+notif.Superseded) {
		t.Fatalf("latency count %d, versions %d + superseded %d", rep.LatencyMs["put_to_notification"].Count, notif.Versions, notif.Superseded)
	}
	if notif.Versions+notif.Superseded+notif.Missing != rep.Puts.Status["200"] {
		t.Fatalf("200s %d, notifications %+v", rep.Puts.Status["200"], notif)
	}
	if rep.Memory.Conns != 300 {
		t.Fatalf("memory %+v", rep.Memory)
	}
	if len(rep.Series) == 0 || ticks != len(rep.Series) {
		t.Fatalf("%d series points, %d progress calls", len(rep.Series), ticks)
	}

	// The node counts what the load tester saw, exactly. Acks may still be
	// in the node's queues when Run returns: poll.
	var d func(string) uint64
	var mismatch string
	ok := eventually(t, 10*time.Second, func() bool {
		d = delta(metrics(t, n), before)
		want := map[string]uint64{
			"pushd_hellos_total":             rep.Hellos.OK,
			"pushd_registers_total":          rep.Registers.OK,
			"pushd_notifications_sent_total": rep.Notifications.Received,
			"pushd_acks_total":               rep.Acks.Sent,
			"pushd_uaid_resets_total":        0,
		}
		for _, status := range []string{"200", "202", "400", "404", "413", "429", "500", "503"} {
			want[fmt.Sprintf("pushd_puts_total{status=%q}", status)] = rep.Puts.Status[status]
		}
		for series, v := range want {
			if d(series) != v {
				mismatch = fmt.Sprintf("%s: node %d, report %d", series, d(series), v)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatal(mismatch)
	}
	if rep.Acks.Sent != rep.Notifications.Received {
		t.Fatalf("acked %d of %d notifications with -ack now", rep.Acks.Sent, rep.Notifications.Received)
	}
}

func TestStormReconnectsWithSameUAIDs(t *testing.T) {
	n := startNode(t, nil)
	before := metrics(t, n)
	cfg := config(n, loadtest.ScenarioStorm)
	cfg.Conns, cfg.StormPct = 200, 50
	rep, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Storm == nil || rep.Storm.Dropped != 100 || rep.Storm.Reconnected != 100 || rep.Storm.Failed != 0 || rep.Storm.UAIDResets != 0 {
		t.Fatalf("storm %+v", rep.Storm)
	}
	if rep.LatencyMs["reconnect"].Count != 100 {
		t.Fatalf("reconnect latency %+v", rep.LatencyMs["reconnect"])
	}
	d := delta(metrics(t, n), before)
	if d("pushd_hellos_total") != 300 || d("pushd_uaid_resets_total") != 0 {
		t.Fatalf("node: %d hellos, %d UAID resets; want 300, 0", d("pushd_hellos_total"), d("pushd_uaid_resets_total"))
	}
}

func TestHelloRateCountsEveryHello(t *testing.T) {
	n := startNode(t, nil)
	before := metrics(t, n)
	cfg := config(n, loadtest.ScenarioHelloRate)
	cfg.Duration, cfg.Parallel = time.Second, 16
	rep, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Hellos.OK == 0 || rep.Hellos.PerSecond <= 0 || rep.Connections.Established != rep.Hellos.OK {
		t.Fatalf("hellos %+v connections %+v", rep.Hellos, rep.Connections)
	}
	if got := delta(metrics(t, n), before)("pushd_hellos_total"); got != rep.Hellos.OK {
		t.Fatalf("node answered %d hellos, report says %d", got, rep.Hellos.OK)
	}
}

func TestUnreachableTargetFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{WS: []string{addr}, Conns: 10})
	if !errors.Is(err, loadtest.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if rep == nil || rep.Failure == "" {
		t.Fatalf("report %+v lacks the failure", rep)
	}
}

func TestAckModes(t *testing.T) {
	for _, mode := range []string{"delay=20ms", "never", "fraction=0.5"} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *engine.Config) { c.LockWait = 50 * time.Millisecond })
			before := metrics(t, n)
			cfg := config(n, loadtest.ScenarioSteady)
			cfg.Conns, cfg.Channels, cfg.Rate, cfg.Duration = 100, 1, 200, time.Second
			var err error
			if cfg.Ack, err = loadtest.ParseAckMode(mode); err != nil {
				t.Fatal(err)
			}
			rep, err := loadtest.Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			switch mode {
			case "never":
				// Each device holds its first notification unacked, so
				// every later PUT to it waits out the lock: 503.
				if rep.Acks.Sent != 0 || rep.Notifications.Received > 100 || rep.Puts.Status["503"] == 0 {
					t.Fatalf("acks %d, notifications %d, statuses %v", rep.Acks.Sent, rep.Notifications.Received, rep.Puts.Status)
				}
			case "fraction=0.5":
				if rep.Acks.Sent == 0 || rep.Acks.Sent >= rep.Notifications.Received {
					t.Fatalf("acked %d of %d", rep.Acks.Sent, rep.Notifications.Received)
				}
			default:
				if rep.Acks.Sent != rep.Notifications.Received {
					t.Fatalf("acked %d of %d", rep.Acks.Sent, rep.Notifications.Received)
				}
			}
			ok := eventually(t, 10*time.Second, func() bool {
				return delta(metrics(t, n), before)("pushd_acks_total") == rep.Acks.Sent
			})
			if !ok {
				t.Fatalf("node counted %d acks, report %d", delta(metrics(t, n), before)("pushd_acks_total"), rep.Acks.Sent)
			}
		})
	}
}

// A device refused at the node's connection cap dials again after a
// back-off, SetupRetries times, and only then counts as failed.
func TestSetupRetriesRedialRefusedDevices(t *testing.T) {
	n := startNode(t, func(c *engine.Config) { c.MaxConns = 5 })
	cfg := config(n, loadtest.ScenarioIdle)
	cfg.Conns, cfg.Channels, cfg.Hold = 8, 1, 0
	cfg.SetupRetries = 2
	cfg.MinEstablished = -1
	rep, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if c := rep.Connections; c.Established != 5 || c.Failed != 3 || c.Retries != 6 {
		t.Fatalf("connections %+v; want 5 established, 3 failed after 2 retries each", c)
	}
	if got := delta(metrics(t, n), map[string]float64{})("pushd_connections_refused_total"); got < 9 {
		t.Fatalf("node refused %d connections, want at least 9 (3 devices, 3 tries each)", got)
	}
}
