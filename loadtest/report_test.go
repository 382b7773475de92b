package loadtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report of a steady run with a little of everything.
func sampleReport() *Report {
	cfg := Config{WS: []string{"ws://127.0.0.1:8080"}, HTTP: []string{"http://127.0.0.1:8081"}, EndpointRewrite: true,
		CommandLine: []string{"pushload", "-http", "http://127.0.0.1:8081", "-ws", "ws://127.0.0.1:8080", "-ack", "delay=5ms", "<&>"}}.withDefaults()
	r := newReport(cfg, time.Unix(1700000000, 0))
	p := &Partial{Target: 1000, PutsPlanned: 500, Seconds: 2}
	p.Counts = Counts{Established: 990, Failed: 10, Hellos: 990, Registers: 990, PutsSent: 500,
		PutStatus: map[string]uint64{"200": 480, "503": 20}, Notifications: 470, Versions: 470, Superseded: 4, Acks: 470,
		Closes: map[string]uint64{"1006": 2}, Errors: map[string]uint64{"dial": 10}}
	p.Memory = Memory{RSSBefore: 10 << 20, RSSAfter: 11 << 20, Conns: 990, BytesPerConn: 1059}
	for k := range p.hists {
		p.hists[k] = newHist()
		for v := range 100 {
			recordUS(p.hists[k], int64(100+v*10))
		}
	}
	series := []SeriesPoint{
		{T: 1700000000, Elapsed: 1, Phase: "ramp", Open: 500, Hellos: 500, Latency: map[string]Summary{"hello": {Count: 500, P50: 0.2, P99: 1}}},
		{T: 1700000001, Elapsed: 2, Phase: "put", Open: 990, Hellos: 490, PutsSent: 250, Responses: 250, Status: map[string]uint64{"200": 240, "503": 10}, Notifications: 235,
			Latency: map[string]Summary{"put_to_notification": {Count: 235, P50: 1, P90: 2, P99: 5, P999: 9, Max: 12}, "put_response": {Count: 250, P50: 1, P99: 4}}},
		{T: 1700000002, Elapsed: 3, Phase: "put", Open: 990, PutsSent: 250, Responses: 250, Notifications: 235,
			Latency: map[string]Summary{"put_to_notification": {Count: 235, P50: 1.5, P90: 2.5, P99: 6, P999: 10, Max: 14}}},
	}
	r.fill(p, series, 990, 3*time.Second, 1)
	return r
}

func TestReportJSONShape(t *testing.T) {
	r := sampleReport()
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: %v is not an object", path, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("report.json lacks %s", path)
			}
		}
		return v
	}
	for path, want := range map[string]float64{
		"connections.target": 1000, "connections.established": 990, "connections.failed": 10,
		"puts.sent": 500, "puts.status.200": 480, "puts.status.503": 20,
		"notifications.received": 470, "notifications.superseded": 4, "notifications.missing": 6, "acks.sent": 470,
		"memory.bytes_per_conn": 1059, "machine.cpus": float64(r.Machine.CPUs),
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	for _, k := range []string{"connect", "hello", "register", "put_response", "put_to_notification"} {
		for _, q := range []string{"p50", "p90", "p99", "p999", "max"} {
			if v, ok := get("latency_ms." + k + "." + q).(float64); !ok || v <= 0 {
				t.Errorf("latency_ms.%s.%s = %v", k, q, v)
			}
		}
	}
	for _, path := range []string{"machine.cpu_model", "machine.go", "machine.host", "command", "series", "started", "config.ack"} {
		get(path)
	}
	if s, _ := get("series").([]any); len(s) != 3 {
		t.Fatalf("series %v", s)
	}
}

func TestReportHTMLSelfContainedAndWellFormed(t *testing.T) {
	r := sampleReport()
	r.Failure = "loadtest: too few connections established: 990 of 1000 (need 990) <b>"
	page := r.HTML()

	for _, ref := range []string{"http://", "https://", "<script", "<link", "<img", "url("} {
		if bytes.Contains(bytes.ToLower(page), []byte(ref)) {
			t.Errorf("page contains %q", ref)
		}
	}
	for _, want := range []string{"<svg", "polyline", "PUT -&gt; notification", "Status breakdown", "FAILED", r.Machine.CPUModel, "-ack delay=5ms"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Well-formed: every element closed and nested, attributes quoted,
	// entities defined (the strict XML decoder checks all three).
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	var stack []string
	var svgs int
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
			if el.Name.Local == "svg" {
				svgs++
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 || svgs < 5 {
		t.Fatalf("unclosed %v, %d charts", stack, svgs)
	}
}

func TestReportCheck(t *testing.T) {
	r := sampleReport()
	if err := r.check(0.99); err != nil {
		t.Fatalf("990 of 1000 at 0.99: %v", err)
	}
	if err := r.check(0.995); !errors.Is(err, ErrTooFewConnections) {
		t.Fatalf("990 of 1000 at 0.995: %v", err)
	}
	if err := r.check(-1); err != nil {
		t.Fatalf("no minimum: %v", err)
	}
}
