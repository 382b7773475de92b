package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

var clientBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushclient-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clientBin = filepath.Join(dir, "pushclient")
	build := exec.Command("go", "build", "-o", clientBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pushclient:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runClient starts pushclient and returns a channel of its output lines.
func runClient(t *testing.T, n *engine.Node, state string, apps string) (lines <-chan string, stop func()) {
	t.Helper()
	cmd := exec.Command(clientBin, "-ws", "ws://"+n.WSAddr().String()+"/", "-apps", apps, "-state", state)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	t.Cleanup(stop)
	return ch, stop
}

func expectLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("pushclient exited; want %q", prefix)
		}
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("pushclient printed %q, want %q...", l, prefix)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("pushclient printed nothing; want %q", prefix)
	}
	return ""
}

// endpoints reads one "endpoint <app> <url>" line per app.
func endpoints(t *testing.T, lines <-chan string, napps int) map[string]string {
	t.Helper()
	eps := map[string]string{}
	for i := 0; i < napps; i++ {
		f := strings.Fields(expectLine(t, lines, "endpoint "))
		eps[f[1]] = f[2]
	}
	return eps
}

func TestPushclientRegistersPrintsVersionsAndKeepsItsState(t *testing.T) {
	n, err := engine.New(engine.Config{
		WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	state := filepath.Join(t.TempDir(), "state.json")

	lines, stop := runClient(t, n, state, "mail,chat")
	eps := endpoints(t, lines, 2)
	if eps["mail"] == "" || eps["chat"] == "" || eps["mail"] == eps["chat"] {
		t.Fatalf("endpoints %v", eps)
	}
	putVersion(t, n, eps["chat"], 5)
	expectLine(t, lines, "version chat 5")
	stop()

	// Restarted, it is the same user agent: same endpoints, and a version
	// sent while it was away arrives. (Version 5 of chat may come again: the
	// client can be stopped between printing it and its ack reaching the
	// node, and delivery is at least once.)
	putVersion(t, n, eps["mail"], 9)
	lines, _ = runClient(t, n, state, "mail,chat")
	got := map[string]string{}
	sawVersion := false
	for len(got) < 2 || !sawVersion {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("pushclient exited")
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "endpoint":
				got[f[1]] = f[2]
			case l == "version mail 9":
				sawVersion = true
			case l == "version chat 5":
			default:
				t.Fatalf("pushclient printed %q after its restart", l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after restart: endpoints %v, version seen %v", got, sawVersion)
		}
	}
	if got["mail"] != eps["mail"] || got["chat"] != eps["chat"] {
		t.Fatalf("endpoints after restart %v, before %v", got, eps)
	}
}

func putVersion(t *testing.T, n *engine.Node, endpoint string, v int) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+n.HTTPAddr().String()+u.Path, strings.NewReader(fmt.Sprintf("version=%d", v)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 202 {
		t.Fatalf("PUT: %s", resp.Status)
	}
}
