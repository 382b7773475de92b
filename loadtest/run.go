package loadtest

import (
	"context"
	"os"
	"time"
)

// Run carries out the configured scenario and returns its report. The
// report comes back also when the run failed (the error says why and
// Report.Failure repeats it), except for an invalid Config.
//
// When Config.Conns exceeds what one process may hold, Run starts worker
// processes (Config.WorkerCommand), gives each a share of the
// connections, PUT rate and ramp, and merges their results.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.CommandLine == nil {
		cfg.CommandLine = os.Args
	}
	start := time.Now()
	rep := newReport(cfg, start)
	fail := func(err error) (*Report, error) {
		rep.Failure = err.Error()
		return rep, err
	}
	targets, err := parseWSTargets(cfg.WS, handshake{})
	if err != nil {
		return fail(err)
	}
	for _, h := range cfg.HTTP {
		if _, err := httpPrefix(h); err != nil {
			return fail(err)
		}
	}
	if err := reachable(ctx, targets, 5*time.Second); err != nil {
		return fail(err)
	}
	perProc, err := connsPerProcess(cfg)
	if err != nil {
		return fail(err)
	}
	procs := 1
	if cfg.Scenario != ScenarioHelloRate && cfg.Conns > perProc {
		procs = (cfg.Conns + perProc - 1) / perProc
	}

	target := cfg.Conns
	if cfg.Scenario == ScenarioHelloRate {
		target = 0
	}
	agg := newAggregate(procs, target, start, cfg.Progress)
	var parts []*Partial
	if procs == 1 {
		var l *local
		if l, err = newLocal(cfg, 0); err != nil {
			return fail(err)
		}
		var p *Partial
		p, err = l.run(ctx, inProcess{agg})
		agg.done(0)
		if p != nil {
			parts = append(parts, p)
		}
	} else {
		parts, err = runWorkers(ctx, cfg, procs, agg)
	}
	merged, merr := mergePartials(parts)
	if merr != nil && err == nil {
		err = merr
	}
	if merged != nil {
		rep.fill(merged, agg.finish(), agg.peakOpen(), time.Since(start), procs)
	}
	if err == nil {
		err = rep.check(cfg.MinEstablished)
	}
	if err != nil {
		return fail(err)
	}
	return rep, nil
}

// inProcess aggregates a single-process run directly.
type inProcess struct{ agg *aggregate }

func (inProcess) barrier(context.Context, string) error { return nil }
func (p inProcess) tick(t *Tick) error                  { return p.agg.add(0, t) }
