package bench

import (
	"context"
	"fmt"
	"net"
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
	// PushdArgs are extra pushd flags.
	PushdArgs []string
}

// IdleResult is the outcome of the idle scenario.
type IdleResult struct {
	Conns int
	// PushdPerConn is pushd's RSS growth per connection after hello and one
	// register, in bytes: (RSS with Conns connections - RSS at start) / Conns.
	PushdPerConn float64
	// PushdMarginal is the growth per connection between Conns/3 and Conns
	// connections, which leaves out fixed costs paid by the first ones
	// (worker stacks, the memtable's first pages, runtime structures).
	PushdMarginal float64
	// HolderMarginal is the same slope for the holder.
	HolderMarginal float64
	// PushdSetupRate is connections per second brought to hello + one
	// register (dial, handshake, hello, register: a synced write) while
	// opening the second step, cfg.Parallel at a time.
	PushdSetupRate float64
	// HolderSetupRate is upgraded connections per second into the holder.
	HolderSetupRate float64
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
	var err error
	if cfg.BenchBin, err = benchBin(cfg.BenchBin); err != nil {
		return IdleResult{}, err
	}
	res := IdleResult{Conns: cfg.Conns}

	holder, err := startProcess(ctx, holderReady, cfg.BenchBin, "holder", "-addr", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	res.HolderPerConn, res.HolderMarginal, res.HolderSetupRate, err = idleGrowth(ctx, cfg, holder, holder.addrs[0], false)
	holder.stop()
	if err != nil {
		return res, fmt.Errorf("holder: %w", err)
	}

	node, err := startPushd(ctx, cfg.PushdBin, cfg.PushdArgs...)
	if err != nil {
		return res, err
	}
	res.PushdPerConn, res.PushdMarginal, res.PushdSetupRate, err = idleGrowth(ctx, cfg, node, node.addrs[0], true)
	node.stop()
	if err != nil {
		return res, fmt.Errorf("pushd: %w", err)
	}
	res.Ratio = res.PushdPerConn / res.HolderPerConn
	return res, nil
}

// idleGrowth opens cfg.Conns connections to addr (saying hello and
// registering one channel when session is set) in two steps, a third and
// then the rest, and returns the process's RSS growth per connection
// overall and between the two steps, and the rate of the second step.
func idleGrowth(ctx context.Context, cfg IdleConfig, p *process, addr string, session bool) (perConn, marginal, rate float64, err error) {
	time.Sleep(time.Second)
	before, err := p.rss()
	if err != nil {
		return 0, 0, 0, err
	}
	conns := make([]net.Conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	third := cfg.Conns / 3
	if err := openConns(ctx, cfg, addr, session, conns[:third]); err != nil {
		return 0, 0, 0, err
	}
	time.Sleep(cfg.Settle)
	mid, err := p.rss()
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	if err := openConns(ctx, cfg, addr, session, conns[third:]); err != nil {
		return 0, 0, 0, err
	}
	rate = float64(cfg.Conns-third) / time.Since(start).Seconds()
	time.Sleep(cfg.Settle)
	after, err := p.rss()
	if err != nil {
		return 0, 0, 0, err
	}
	return float64(after-before) / float64(cfg.Conns), float64(after-mid) / float64(cfg.Conns-third), rate, nil
}

// openConns fills conns with connections to addr, cfg.Parallel at a time.
func openConns(ctx context.Context, cfg IdleConfig, addr string, session bool, conns []net.Conn) error {
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
				if i >= len(conns) || ctx.Err() != nil {
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
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
