package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// The worker protocol, one JSON document per line.
//
// Parent to worker, on stdin: first a workerSpec, then "go" each time the
// worker may pass the barrier it announced. End of input ends the worker.
//
// Worker to parent, on stdout: workerMsg of type "tick" (each second),
// "barrier" (waiting for "go"), "result" (last line; its Partial carries
// the whole-run histograms in wire form) or "error".

// workerSpec is what a worker runs.
type workerSpec struct {
	Config Config `json:"config"`
	Index  int    `json:"index"`
}

type workerMsg struct {
	Type    string   `json:"type"`
	Tick    *Tick    `json:"tick,omitempty"`
	Barrier string   `json:"barrier,omitempty"`
	Result  *Partial `json:"result,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// RunWorker is the worker side of a multi-process run: it reads its
// share of the run from in, runs it in this process, and writes ticks and
// its result to out. It returns when the run is over, ctx ends, or in
// ends. log receives warnings; nil means slog.Default().
func RunWorker(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("loadtest: worker: reading spec: %w", err)
	}
	var spec workerSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("loadtest: worker: spec: %w", err)
	}
	cfg := spec.Config
	cfg.Logger = log
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &workerCoord{enc: json.NewEncoder(out), goes: make(chan struct{}, 16)}
	go func() {
		// Each "go" line releases one barrier; the end of input (the
		// parent is gone) ends the run.
		defer cancel()
		for {
			line, err := br.ReadString('\n')
			if line == "go\n" {
				w.goes <- struct{}{}
			}
			if err != nil {
				return
			}
		}
	}()
	l, err := newLocal(cfg, spec.Index)
	if err != nil {
		_ = w.send(workerMsg{Type: "error", Error: err.Error()})
		return err
	}
	p, err := l.run(ctx, w)
	if p == nil {
		_ = w.send(workerMsg{Type: "error", Error: err.Error()})
		return err
	}
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("worker %d: %v", spec.Index, err))
	}
	if err := p.encodeHists(); err != nil {
		return err
	}
	return w.send(workerMsg{Type: "result", Result: p})
}

// workerCoord is a worker's coordinator: it talks to the parent.
type workerCoord struct {
	mu   sync.Mutex // serialises writes to enc
	enc  *json.Encoder
	goes chan struct{}
}

func (w *workerCoord) send(m workerMsg) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(m); err != nil {
		return fmt.Errorf("loadtest: worker: %w", err)
	}
	return nil
}

func (w *workerCoord) barrier(ctx context.Context, name string) error {
	if err := w.send(workerMsg{Type: "barrier", Barrier: name}); err != nil {
		return err
	}
	select {
	case <-w.goes:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *workerCoord) tick(t *Tick) error {
	for k, h := range t.hists {
		if h == nil {
			continue
		}
		enc, err := encodeHist(h)
		if err != nil {
			return err
		}
		if t.Hist == nil {
			t.Hist = make(map[string]string)
		}
		t.Hist[kindNames[k]] = enc
	}
	return w.send(workerMsg{Type: "tick", Tick: t})
}
