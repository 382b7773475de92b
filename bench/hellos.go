package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HellosConfig configures the connection-ramp scenario.
type HellosConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// BenchBin runs the holder baseline ("pushbench holder"). Zero means
	// the running executable.
	BenchBin string
	// Parallel is how many connections are in flight at once, each slot a
	// closed loop of whole connections. Zero means 64.
	Parallel int
	// Duration of each measured phase. Zero means 5s.
	Duration time.Duration
	// Warmup before each measured phase. Zero means 1s.
	Warmup time.Duration
	// Rounds is how many times the phases run, alternating holder and
	// pushd. Zero means 2.
	Rounds int
	// PushdArgs are extra pushd flags.
	PushdArgs []string
	// Progress, if set, is told what the scenario is doing.
	Progress func(format string, args ...any)
}

// HellosSide is one server's figures, over all rounds.
type HellosSide struct {
	// Rate is completed connections per second (hellos answered by pushd,
	// upgrades by the holder), the mean of the rounds.
	Rate float64
	// Conns is the completed connections in the measured phases.
	Conns int64
	// Errors counts failed connections in the measured phases (dial,
	// handshake, missing or failed hello answer, timeouts).
	Errors int64
	// ServerCPU is the server process's CPU time per completed
	// connection; SelfCPU is the load generator's (this process's).
	ServerCPU, SelfCPU time.Duration
}

// HellosResult is the outcome of the connection-ramp scenario.
type HellosResult struct {
	Parallel, Rounds int
	// Pushd loops: connect, upgrade, send a hello, read pushd's hello
	// answer (status 200 and a fresh UAID), close.
	Pushd HellosSide
	// Holder loops: connect, upgrade, send the same hello (which the
	// holder reads and discards unparsed), close.
	Holder HellosSide
	// Ratio is Pushd.Rate / Holder.Rate.
	Ratio float64
}

// RunHellos measures how many connections per second pushd takes from
// dial to hello answered, against how many the bare gnet + gobwas/ws
// holder takes from dial to upgraded, with the same client: Parallel
// closed loops, each opening one connection at a time. Both processes run
// throughout; the measured phases alternate between them.
func RunHellos(ctx context.Context, cfg HellosConfig) (HellosResult, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = time.Second
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	var err error
	if cfg.BenchBin, err = benchBin(cfg.BenchBin); err != nil {
		return HellosResult{}, err
	}
	res := HellosResult{Parallel: cfg.Parallel, Rounds: cfg.Rounds}

	holder, err := startProcess(ctx, holderReady, cfg.BenchBin, "holder", "-addr", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer holder.stop()
	node, err := startPushd(ctx, cfg.PushdBin, cfg.PushdArgs...)
	if err != nil {
		return res, err
	}
	defer node.stop()
	progress("holder serving %s; pushd serving ws=%s", holder.addrs[0], node.addrs[0])

	var src atomic.Uint64 // source addresses, shared so that no phase reuses another's soon
	for r := 0; r < cfg.Rounds; r++ {
		for _, side := range []struct {
			name  string
			p     *process
			reply bool
			out   *HellosSide
		}{{"holder", holder, false, &res.Holder}, {"pushd", node, true, &res.Pushd}} {
			cl, err := newHelloClient(side.p.addrs[0], side.reply, &src)
			if err != nil {
				return res, err
			}
			ph, err := cl.phase(ctx, cfg, side.p)
			if err != nil {
				return res, fmt.Errorf("%s: %w", side.name, err)
			}
			progress("round %d %s: %.0f conns/s, %d errors, server %v, load generator %v per conn",
				r+1, side.name, ph.Rate, ph.Errors, ph.ServerCPU, ph.SelfCPU)
			side.out.add(ph, cfg.Rounds)
		}
	}
	res.Pushd.perConn()
	res.Holder.perConn()
	if res.Holder.Rate > 0 {
		res.Ratio = res.Pushd.Rate / res.Holder.Rate
	}
	return res, nil
}

// add accumulates one round: rates average, the rest sums (CPU as total
// time until perConn divides it).
func (s *HellosSide) add(ph HellosSide, rounds int) {
	s.Rate += ph.Rate / float64(rounds)
	s.Conns += ph.Conns
	s.Errors += ph.Errors
	s.ServerCPU += ph.ServerCPU * time.Duration(ph.Conns)
	s.SelfCPU += ph.SelfCPU * time.Duration(ph.Conns)
}

func (s *HellosSide) perConn() {
	if s.Conns > 0 {
		s.ServerCPU /= time.Duration(s.Conns)
		s.SelfCPU /= time.Duration(s.Conns)
	}
}

// helloMsg is the hello every connection sends: a new device, no UAID.
const helloMsg = `{"messageType":"hello","uaid":"","channelIDs":[]}`

// helloClient opens connections one after another, the same way to
// either server. Safe for concurrent use by the phase's loops.
type helloClient struct {
	raddr  string
	reply  bool   // wait for the server's hello answer before closing
	req    []byte // the opening handshake
	accept []byte // "Sec-WebSocket-Accept" value the key calls for
	hello  []byte // helloMsg as one masked text frame
	src    *atomic.Uint64
}

func newHelloClient(addr string, reply bool, src *atomic.Uint64) (*helloClient, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host).To4() == nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("bench: hellos needs a 127.x.y.z target, not %q", addr)
	}
	return &helloClient{
		raddr: addr,
		reply: reply,
		req: []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: push-notification\r\n\r\n"),
		accept: []byte(base64.StdEncoding.EncodeToString(sum[:])),
		hello:  maskedText([]byte(helloMsg)),
		src:    src,
	}, nil
}

// maskedText is payload (under 126 bytes) as one final, masked text
// frame. The mask is fixed: it need only be unpredictable to
// intermediaries, and loopback has none.
func maskedText(payload []byte) []byte {
	mask := [4]byte{0x1f, 0x8b, 0x3c, 0x55}
	f := append([]byte{0x81, 0x80 | byte(len(payload))}, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// phase runs cfg.Parallel loops: cfg.Warmup unmeasured, then
// cfg.Duration measured, then waits for the loops to finish their
// connections.
func (hc *helloClient) phase(ctx context.Context, cfg HellosConfig, server *process) (HellosSide, error) {
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		done      atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Pointer[error]
		wg        sync.WaitGroup
	)
	for range cfg.Parallel {
		wg.Go(func() {
			buf := make([]byte, 1024)
			for !stop.Load() && ctx.Err() == nil {
				err := hc.once(ctx, buf)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				done.Add(1)
			}
		})
	}
	time.Sleep(cfg.Warmup)
	srv0, err1 := server.cpu()
	self0, err2 := readCPU(os.Getpid())
	measuring.Store(true)
	start := time.Now()
	time.Sleep(cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	srv1, err3 := server.cpu()
	self1, err4 := readCPU(os.Getpid())
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(err1, err2, err3, err4, ctx.Err()); err != nil {
		return HellosSide{}, err
	}
	ph := HellosSide{Conns: done.Load(), Errors: errs.Load()}
	if ph.Conns == 0 {
		if e := firstErr.Load(); e != nil {
			return ph, fmt.Errorf("bench: no connection completed: %w", *e)
		}
		return ph, errors.New("bench: no connection completed")
	}
	ph.Rate = float64(ph.Conns) / elapsed.Seconds()
	ph.ServerCPU = (srv1 - srv0) / time.Duration(ph.Conns)
	ph.SelfCPU = (self1 - self0) / time.Duration(ph.Conns)
	return ph, nil
}

// once opens one connection: dial (from the next 127.x.y.z source
// address, so that closed connections' TIME_WAIT never runs one address
// out of ports), write the opening handshake, read and check the 101,
// write the hello frame, read the server's hello answer when hc.reply is
// set, close. buf is scratch space of at least 1 KiB.
func (hc *helloClient) once(ctx context.Context, buf []byte) error {
	x := hc.src.Add(1) % (250 * 250)
	d := net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: -1,
		LocalAddr: &net.TCPAddr{IP: net.IP{127, 9, byte(x / 250), byte(1 + x%250)}},
		Control:   bindNoPort,
	}
	nc, err := d.DialContext(ctx, "tcp", hc.raddr)
	if err != nil {
		return fmt.Errorf("bench: dial: %w", err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(hc.req); err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	n, end := 0, -1
	for end < 0 {
		if n == len(buf) {
			return errors.New("bench: handshake response too long")
		}
		m, err := nc.Read(buf[n:])
		if err != nil {
			return fmt.Errorf("bench: handshake: %w", err)
		}
		n += m
		end = bytes.Index(buf[:n], []byte("\r\n\r\n"))
	}
	head := buf[:end]
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) || !bytes.Contains(head, hc.accept) {
		return fmt.Errorf("bench: handshake refused: %q", head)
	}
	if _, err := nc.Write(hc.hello); err != nil {
		return fmt.Errorf("bench: hello: %w", err)
	}
	if !hc.reply {
		return nil
	}
	n = copy(buf, buf[end+4:n])
	msg, err := readServerFrame(nc, buf, n)
	if err != nil {
		return fmt.Errorf("bench: hello answer: %w", err)
	}
	if !bytes.HasPrefix(msg, []byte(`{"messageType":"hello","status":200,`)) {
		return fmt.Errorf("bench: hello answer %q", msg)
	}
	return nil
}

// readServerFrame reads one unmasked, final text frame from r into buf,
// whose first n bytes were read already, and returns its payload.
func readServerFrame(r io.Reader, buf []byte, n int) ([]byte, error) {
	for {
		if n >= 2 {
			if buf[0] != 0x81 || buf[1]&0x80 != 0 {
				return nil, fmt.Errorf("unexpected frame header %#x %#x", buf[0], buf[1])
			}
			head, size := 2, int(buf[1]&0x7f)
			switch {
			case size == 127:
				return nil, errors.New("frame too long")
			case size == 126 && n < 4:
				size = -1 // length not read yet
			case size == 126:
				head, size = 4, int(binary.BigEndian.Uint16(buf[2:4]))
			}
			if size >= 0 && head+size > len(buf) {
				return nil, errors.New("frame too long")
			}
			if size >= 0 && n >= head+size {
				return buf[head : head+size], nil
			}
		}
		m, err := r.Read(buf[n:])
		if err != nil {
			return nil, err
		}
		n += m
	}
}

// bindNoPort lets the kernel pick the source port at connect time (per
// destination) rather than at bind time (per source address).
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
