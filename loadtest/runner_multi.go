package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// runWorkers splits the run over procs worker processes and collects
// their results; ticks go to agg as they arrive.
func runWorkers(ctx context.Context, cfg Config, procs int, agg *aggregate) ([]*Partial, error) {
	argv := cfg.WorkerCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		argv = []string{exe, "-worker"}
	}
	bar := &barrier{live: procs}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		parts []*Partial
		errs  []error
	)
	for i := range procs {
		spec := workerSpec{Config: shareOf(cfg, i, procs), Index: i}
		w, err := startWorker(ctx, argv, spec, cfg)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			bar.leave()
			agg.done(i)
			continue
		}
		wg.Go(func() {
			p, err := w.collect(bar, agg)
			bar.leave()
			agg.done(w.index)
			mu.Lock()
			defer mu.Unlock()
			if p != nil {
				parts = append(parts, p)
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return parts, errors.Join(errs...)
}

// shareOf is worker i's part of cfg: an even share of the connections,
// and of the ramp, PUTs and PUT concurrency in proportion. The workers'
// PUT counts add up to the run's exactly.
func shareOf(cfg Config, i, procs int) Config {
	w := cfg
	first := i * cfg.Conns / procs // connections of workers before i
	w.Conns = (i+1)*cfg.Conns/procs - first
	frac := float64(w.Conns) / float64(cfg.Conns)
	w.Ramp = cfg.Ramp * frac
	total := plannedPuts(cfg.Rate, cfg.Duration)
	mine := total*int64(first+w.Conns)/int64(cfg.Conns) - total*int64(first)/int64(cfg.Conns)
	w.Rate = float64(mine) / cfg.Duration.Seconds()
	w.PutConns = max(1, int(float64(cfg.PutConns)*frac+0.5))
	w.MaxConnsPerProcess = w.Conns
	w.WorkerCommand = nil
	w.Progress, w.Logger = nil, nil
	return w
}

// worker is a running worker process.
type worker struct {
	index  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
}

func startWorker(ctx context.Context, argv []string, spec workerSpec, cfg Config) (*worker, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// On cancellation let the worker stop its run and report.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = cfg.SetupTimeout + cfg.Drain + 10*time.Second
	cmd.Stderr = &logWriter{log: cfg.Logger, index: spec.Index}
	w := &worker{index: spec.Index, cmd: cmd}
	var err error
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %d: %w", ErrWorker, spec.Index, err)
	}
	if w.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, fmt.Errorf("%w: %d: %w", ErrWorker, spec.Index, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %d: %w", ErrWorker, spec.Index, err)
	}
	b, err := json.Marshal(spec)
	if err == nil {
		_, err = w.stdin.Write(append(b, '\n'))
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%w: %d: %w", ErrWorker, spec.Index, err)
	}
	return w, nil
}

// collect reads the worker's messages until it exits and returns its
// result.
func (w *worker) collect(bar *barrier, agg *aggregate) (*Partial, error) {
	sc := bufio.NewScanner(w.stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var (
		res    *Partial
		msgErr error
	)
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			msgErr = fmt.Errorf("%w: %d: bad message: %w", ErrWorker, w.index, err)
			continue
		}
		switch m.Type {
		case "tick":
			if m.Tick != nil {
				if err := agg.add(w.index, m.Tick); err != nil {
					msgErr = err
				}
			}
		case "barrier":
			bar.arrive(w)
		case "result":
			res = m.Result
		case "error":
			msgErr = fmt.Errorf("%w: %d: %s", ErrWorker, w.index, m.Error)
		}
	}
	_ = w.stdin.Close()
	err := w.cmd.Wait()
	switch {
	case res == nil && msgErr == nil:
		return nil, fmt.Errorf("%w: %d sent no result: %v", ErrWorker, w.index, err)
	case res == nil:
		return nil, msgErr
	}
	return res, msgErr
}

// release lets the worker pass its barrier.
func (w *worker) release() { _, _ = io.WriteString(w.stdin, "go\n") }

// barrier releases the waiting workers once every live worker waits.
type barrier struct {
	mu      sync.Mutex
	live    int
	waiting []*worker
}

func (b *barrier) arrive(w *worker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting = append(b.waiting, w)
	b.releaseLocked()
}

// leave says a worker exited.
func (b *barrier) leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live--
	b.releaseLocked()
}

// REQUIRES: b.mu held.
func (b *barrier) releaseLocked() {
	if len(b.waiting) == 0 || len(b.waiting) < b.live {
		return
	}
	for _, w := range b.waiting {
		w.release()
	}
	b.waiting = b.waiting[:0]
}

// logWriter passes a worker's stderr lines to the logger.
type logWriter struct {
	log   *slog.Logger
	index int
	mu    sync.Mutex
	buf   []byte
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Warn("loadtest worker", "worker", l.index, "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}
