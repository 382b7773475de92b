package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// IdleConfig configures the idle-memory scenario.
type IdleConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// BenchBin is the pushbench binary that runs the holder baseline
	// ("pushbench holder"). Zero means the running executable.
	BenchBin string
	// Conns is the number of idle connections. Zero means 15,000.
	Conns int
	// Parallel is how many connections are set up at once. Zero means 64.
	Parallel int
	// Settle is the pause before RSS is read. Zero means 3s.
	Settle time.Duration
}

// IdleResult is the outcome of the idle scenario.
type IdleResult struct {
	Conns int
	// PushdPerConn is pushd's RSS growth per connection after hello and one
	// register, in bytes.
	PushdPerConn float64
	// HolderPerConn is the bare gnet + gobwas/ws holder's RSS growth per
	// upgraded connection, in bytes.
	HolderPerConn float64
	// Ratio is PushdPerConn / HolderPerConn.
	Ratio float64
}

var holderReady = regexp.MustCompile(regexp.QuoteMeta(HolderReady) + `(\S+)`)

// RunIdle measures the RSS per idle connection of pushd and of the holder
// baseline, one after the other, with the same client.
func RunIdle(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 15000
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 64
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	if cfg.BenchBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return IdleResult{}, err
		}
		cfg.BenchBin = exe
	}
	res := IdleResult{Conns: cfg.Conns}

	holder, err := startProcess(ctx, holderReady, cfg.BenchBin, "holder", "-addr", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	res.HolderPerConn, err = idleGrowth(ctx, cfg, holder, holder.addrs[0], false)
	holder.stop()
	if err != nil {
		return res, fmt.Errorf("holder: %w", err)
	}

	dir, err := os.MkdirTemp("", "pushbench-idle-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	node, err := startPushd(ctx, cfg.PushdBin, dir)
	if err != nil {
		return res, err
	}
	res.PushdPerConn, err = idleGrowth(ctx, cfg, node, node.addrs[0], true)
	node.stop()
	if err != nil {
		return res, fmt.Errorf("pushd: %w", err)
	}
	res.Ratio = res.PushdPerConn / res.HolderPerConn
	return res, nil
}

// idleGrowth opens cfg.Conns connections to addr (saying hello and
// registering one channel when session is set) and returns the process's
// RSS growth per connection.
func idleGrowth(ctx context.Context, cfg IdleConfig, p *process, addr string, session bool) (float64, error) {
	time.Sleep(time.Second)
	before, err := p.rss()
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, cfg.Conns)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	for w := 0; w < cfg.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Conns || ctx.Err() != nil {
					return
				}
				d, err := dialDevice(ctx, addr)
				if err == nil && session {
					_, err = d.helloRegister(uuid.NewString())
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					return
				}
				conns[i] = d.conn
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return 0, firstErr
	}
	time.Sleep(cfg.Settle)
	after, err := p.rss()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(cfg.Conns), nil
}
