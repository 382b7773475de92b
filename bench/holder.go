package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// HolderReady is the line a holder prints once it listens.
const HolderReady = "holder serving addr="

// RunHolder runs the idle-connection floor: a bare gnet v2 server that
// upgrades WebSockets with gobwas/ws and then only holds them. It prints
// HolderReady and its address to out and runs until ctx ends.
// An addr with port 0 gets a free port picked before gnet binds it.
func RunHolder(ctx context.Context, addr string, out io.Writer) error {
	addr, err := freeAddr(addr)
	if err != nil {
		return err
	}
	h := &holder{}
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithLogger(silentLogger{}))
	}()
	select {
	case err := <-errc:
		return err
	case eng := <-h.booted():
		fmt.Fprintf(out, "%s%s\n", HolderReady, addr)
		select {
		case <-ctx.Done():
			return eng.Stop(context.Background())
		case err := <-errc:
			return err
		}
	}
}

type holder struct {
	gnet.BuiltinEventEngine
	boot chan gnet.Engine
}

func (h *holder) booted() chan gnet.Engine {
	if h.boot == nil {
		h.boot = make(chan gnet.Engine, 1)
	}
	return h.boot
}

func (h *holder) OnBoot(eng gnet.Engine) gnet.Action {
	h.booted() <- eng
	return gnet.None
}

// OnTraffic upgrades a complete handshake and ignores everything after.
func (h *holder) OnTraffic(c gnet.Conn) gnet.Action {
	if c.Context() != nil {
		buf, _ := c.Peek(-1)
		_, _ = c.Discard(len(buf))
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return gnet.None
	}
	var out bytes.Buffer
	_, err := ws.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(buf[:end+4]), &out})
	_, _ = c.Discard(end + 4)
	_, _ = c.Write(out.Bytes())
	if err != nil {
		return gnet.Close
	}
	c.SetContext(true)
	return gnet.None
}

// freeAddr resolves port 0 in addr to a port free right now.
func freeAddr(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type silentLogger struct{}

func (silentLogger) Debugf(string, ...any) {}
func (silentLogger) Infof(string, ...any)  {}
func (silentLogger) Warnf(string, ...any)  {}
func (silentLogger) Errorf(string, ...any) {}
func (silentLogger) Fatalf(string, ...any) {}
