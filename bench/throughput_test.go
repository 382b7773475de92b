package bench

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/pushd/pushd/internal/proctest"
)

// TestThroughputScenarioBrief runs the throughput scenario for a moment:
// the bare handler, the parts baseline and pushd all complete their loops
// without errors.
func TestThroughputScenarioBrief(t *testing.T) {
	pushd := buildPushd(t)
	pushbench, err := proctest.Build(t.TempDir(), "../cmd/pushbench", "pushbench", false)
	if err != nil {
		t.Fatalf("building pushbench: %v", err)
	}
	res, err := RunThroughput(t.Context(), ThroughputConfig{
		PushdBin: pushd, BenchBin: pushbench, Clients: 4,
		Duration: 300 * time.Millisecond, Warmup: 200 * time.Millisecond, Progress: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.BaselinePuts <= 0 || res.PartsCycles <= 0 || res.PushdCycles <= 0 || res.Errors != 0 {
		t.Errorf("result %+v", res)
	}
}

// TestPartsBaselineCycle drives the parts baseline by hand: a registered
// device gets the notification of a PUT's version, and PUTs without a
// version or to an endpoint nobody registered are refused.
func TestPartsBaselineCycle(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunBaselineParts(ctx, "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunBaselineParts: %v", err)
		}
	})
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no ready line: %v", <-done)
	}
	m := partsReady.FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("ready line %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addrs := m[1:]
	devs, chids, paths, err := connectDevices(ctx, addrs[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDevices(devs)

	put := func(path, body string) int {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(fasthttp.MethodPut)
		req.SetRequestURI("http://" + addrs[1] + path)
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	for v := uint64(1); v <= 3; v++ {
		if code := put(paths[1], "version="+strconv.FormatUint(v, 10)); code != 200 {
			t.Fatalf("PUT version %d: %d", v, code)
		}
		if _, ok := cycle(devs[1], chids[1], v, nil); !ok {
			t.Fatalf("version %d: no notification for it", v)
		}
	}
	if code := put(paths[0], "data=x"); code != 400 {
		t.Errorf("PUT without a version: %d, want 400", code)
	}
	if code := put("/update/99", "version=1"); code != 400 {
		t.Errorf("PUT to an unregistered endpoint: %d, want 400", code)
	}
}
