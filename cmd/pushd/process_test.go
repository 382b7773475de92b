package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// pushdBin is the pushd binary built once for the process tests.
var pushdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pushdBin = filepath.Join(dir, "pushd")
	build := exec.Command("go", "build", "-race", "-o", pushdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pushd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a pushd process started by a test.
type proc struct {
	cmd      *exec.Cmd
	wsAddr   string
	httpAddr string
	done     chan struct{}
	mu       sync.Mutex
	log      strings.Builder
}

var servingRE = regexp.MustCompile(`pushd node serving"? ws=(\S+) http=(\S+)`)

// startPushd runs pushd on ephemeral loopback ports with the given data
// directory; shell, if not empty, is a shell prefix such as "ulimit -n 300;".
// It returns once the node logs that it serves.
func startPushd(t *testing.T, dataDir, shell string, args ...string) *proc {
	t.Helper()
	all := append([]string{"-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dataDir}, args...)
	var cmd *exec.Cmd
	if shell != "" {
		quoted := make([]string, len(all))
		for i, a := range all {
			quoted[i] = "'" + a + "'"
		}
		cmd = exec.Command("sh", "-c", shell+" exec "+pushdBin+" "+strings.Join(quoted, " "))
	} else {
		cmd = exec.Command(pushdBin, all...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pushd: %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case a := <-ready:
		p.wsAddr, p.httpAddr = a[0], a[1]
	case <-p.done:
		t.Fatalf("pushd exited before serving:\n%s", p.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("pushd did not start:\n%s", p.output())
	}
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// device is a gorilla/websocket client of a pushd process.
type device struct {
	t    *testing.T
	conn *websocket.Conn
}

func connect(t *testing.T, wsAddr string) *device {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+wsAddr+"/", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsAddr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &device{t: t, conn: conn}
}

func (d *device) roundTrip(msg any) map[string]any {
	d.t.Helper()
	if err := d.conn.WriteJSON(msg); err != nil {
		d.t.Fatalf("send: %v", err)
	}
	return d.read()
}

func (d *device) read() map[string]any {
	d.t.Helper()
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := d.conn.ReadJSON(&m); err != nil {
		d.t.Fatalf("read: %v", err)
	}
	return m
}

// putVersion PUTs version=v to the endpoint path on httpAddr.
func putVersion(ctx context.Context, httpAddr, path string, v uint64) (int, error) {
	body := strings.NewReader(url.Values{"version": {fmt.Sprint(v)}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+httpAddr+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func endpointPath(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("endpoint %q: %v", endpoint, err)
	}
	return u.Path
}

func decodeUpdates(t *testing.T, m map[string]any) map[string]uint64 {
	t.Helper()
	if m["messageType"] != "notification" {
		b, _ := json.Marshal(m)
		t.Fatalf("want notification, got %s", b)
	}
	out := map[string]uint64{}
	for _, u := range m["updates"].([]any) {
		up := u.(map[string]any)
		out[up["channelID"].(string)] = uint64(up["version"].(float64))
	}
	return out
}

// registeredDevice connects a device that says hello with a fresh UAID and
// registers n channels; it returns the UAID, the channel IDs and the
// endpoints' paths.
func registeredDevice(t *testing.T, wsAddr string, n int) (dev *device, uaid string, chids, paths []string) {
	t.Helper()
	dev = connect(t, wsAddr)
	hello := dev.roundTrip(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}})
	uaid, _ = hello["uaid"].(string)
	if uaid == "" {
		t.Fatalf("hello: %v", hello)
	}
	chids, paths = make([]string, n), make([]string, n)
	for i := range chids {
		chids[i] = uuid.NewString()
		reg := dev.roundTrip(map[string]any{"messageType": "register", "channelID": chids[i]})
		paths[i] = endpointPath(t, reg["pushEndpoint"].(string))
	}
	return dev, uaid, chids, paths
}
