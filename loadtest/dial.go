package loadtest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wsTarget is one client listener connections are spread over.
type wsTarget struct {
	addr     string       // resolved ip:port dialled
	raddr    *net.TCPAddr // shared by every connection's remote address
	loopback bool
	req      []byte // the opening handshake
}

// parseWSTargets resolves "ws://host:port[/path]" or "host:port" targets.
func parseWSTargets(list []string, hs handshake) ([]wsTarget, error) {
	var out []wsTarget
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "wss://") {
			return nil, fmt.Errorf("loadtest: target %q: TLS is not supported", s)
		}
		rest := strings.TrimPrefix(s, "ws://")
		hostport, path := rest, "/"
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			hostport, path = rest[:i], rest[i:]
		}
		ra, err := net.ResolveTCPAddr("tcp", hostport)
		if err != nil {
			return nil, fmt.Errorf("loadtest: target %q: %w", s, err)
		}
		if ip4 := ra.IP.To4(); ip4 != nil {
			ra.IP = ip4
		}
		out = append(out, wsTarget{addr: ra.String(), raddr: ra, loopback: ra.IP.IsLoopback(), req: hs.request(hostport, path)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadtest: no WebSocket target")
	}
	return out, nil
}

// httpPrefix turns "http://host:port[/]" or "host:port" into
// "http://host:port".
func httpPrefix(s string) (string, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if strings.HasPrefix(s, "https://") {
		return "", fmt.Errorf("loadtest: HTTP target %q: TLS is not supported", s)
	}
	if !strings.HasPrefix(s, "http://") {
		s = "http://" + s
	}
	if strings.Count(s, "/") > 2 || len(s) == len("http://") {
		return "", fmt.Errorf("loadtest: HTTP target %q: want http://host:port", s)
	}
	return s, nil
}

// dialer opens connections. On a loopback IPv4 target each dial binds a
// different 127.x.y.z source address (the process index picks x), so the
// ~28,000 ephemeral ports of one source address do not cap the
// connections to one port. Safe for concurrent use.
type dialer struct {
	index   int // process index
	timeout time.Duration
	next    atomic.Uint64
}

// sourceAddrs is how many source addresses one process cycles through.
const sourceAddrs = 250 * 250

func (d *dialer) dial(ctx context.Context, t *wsTarget) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: -1}
	if t.loopback && len(t.raddr.IP) == net.IPv4len {
		x := (d.next.Add(1) - 1) % sourceAddrs
		nd.LocalAddr = &net.TCPAddr{IP: net.IP{127, byte(1 + d.index%250), byte(x / 250), byte(1 + x%250)}}
		nd.Control = bindNoPort
	}
	nc, err := nd.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	// gnet keeps both addresses for the connection's lifetime: share the
	// target's and keep a 4-byte copy of the local IP (Go builds them
	// pointing into larger buffers).
	if ra, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ra.IP = t.raddr.IP
	}
	if la, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		if ip4 := la.IP.To4(); ip4 != nil {
			la.IP = append(net.IP(nil), ip4...)
		}
	}
	return nc, nil
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

// reachable opens and closes one connection to each target.
func reachable(ctx context.Context, targets []wsTarget, timeout time.Duration) error {
	for i := range targets {
		nd := net.Dialer{Timeout: timeout}
		nc, err := nd.DialContext(ctx, "tcp", targets[i].addr)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, targets[i].addr, err)
		}
		nc.Close()
	}
	return nil
}
