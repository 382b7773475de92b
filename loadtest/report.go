package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is the outcome of a run, as written to report.json.
type Report struct {
	Scenario  string    `json:"scenario"`
	Command   []string  `json:"command"`
	Machine   Machine   `json:"machine"`
	Started   time.Time `json:"started"`
	Elapsed   float64   `json:"elapsed_s"`
	Processes int       `json:"processes"`
	Config    struct {
		WS              []string `json:"ws"`
		HTTP            []string `json:"http,omitempty"`
		EndpointRewrite bool     `json:"endpoint_rewrite"`
		Conns           int      `json:"conns"`
		Ramp            float64  `json:"ramp"`
		Channels        int      `json:"channels"`
		Hold            string   `json:"hold"`
		Rate            float64  `json:"rate"`
		Duration        string   `json:"duration"`
		Ack             string   `json:"ack"`
		StormPct        float64  `json:"storm_pct,omitempty"`
		MinEstablished  float64  `json:"min_established"`
	} `json:"config"`

	Connections struct {
		Target      int    `json:"target"`
		Established uint64 `json:"established"`
		Failed      uint64 `json:"failed"`
		Retries     uint64 `json:"retries"` // set-ups tried again (Config.SetupRetries)
		PeakOpen    int64  `json:"peak_open"`
	} `json:"connections"`
	Hellos struct {
		OK        uint64  `json:"ok"`
		Failed    uint64  `json:"failed"`
		PerSecond float64 `json:"per_second,omitempty"`
	} `json:"hellos"`
	Registers struct {
		OK     uint64 `json:"ok"`
		Failed uint64 `json:"failed"`
	} `json:"registers"`
	Puts struct {
		Planned   int64             `json:"planned"`
		Sent      uint64            `json:"sent"`
		Status    map[string]uint64 `json:"status"`
		Errors    uint64            `json:"errors"`
		PerSecond float64           `json:"per_second"`
	} `json:"puts"`
	Notifications struct {
		// Received counts notification messages; Versions the PUTs'
		// versions received the first time; Duplicates the others.
		// Superseded is PUTs answered 200 whose own version never
		// arrived because a later version of the same channel did
		// (first): two PUTs reached the server out of order, and it
		// answered the older 200 without a notification, or replaced a
		// pending version before delivery. Their put_to_notification
		// latency runs to that later notification. Missing is PUTs
		// answered 200 that were neither received nor superseded.
		Received   uint64 `json:"received"`
		Versions   uint64 `json:"versions"`
		Duplicates uint64 `json:"duplicates"`
		Superseded uint64 `json:"superseded"`
		Missing    uint64 `json:"missing"`
	} `json:"notifications"`
	Acks struct {
		Sent uint64 `json:"sent"`
	} `json:"acks"`
	Storm *StormStats `json:"storm,omitempty"`
	// Closes counts connections the server closed, by close code (1006:
	// without a close frame).
	Closes map[string]uint64 `json:"closes"`
	Errors map[string]uint64 `json:"errors"`
	Memory Memory            `json:"memory"`
	// LatencyMs has connect, hello, register, put_response,
	// put_to_notification and reconnect.
	LatencyMs map[string]Summary `json:"latency_ms"`
	Series    []SeriesPoint      `json:"series"`
	Notes     []string           `json:"notes,omitempty"`
	// Failure says why the run failed; empty when it passed.
	Failure string `json:"failure,omitempty"`
}

// StormStats are the storm scenario's reconnections. UAIDResets counts
// hellos answered with another UAID than the one the device named.
type StormStats struct {
	Dropped     uint64 `json:"dropped"`
	Reconnected uint64 `json:"reconnected"`
	Failed      uint64 `json:"failed"`
	UAIDResets  uint64 `json:"uaid_resets"`
}

// Machine describes the host the load generator ran on.
type Machine struct {
	Host     string `json:"host"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Memory   string `json:"memory"`
	OS       string `json:"os"`
	Go       string `json:"go"`
}

// ThisMachine describes the running host.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m.Memory = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	return m
}

func newReport(cfg Config, started time.Time) *Report {
	r := &Report{Scenario: string(cfg.Scenario), Command: cfg.CommandLine, Machine: ThisMachine(), Started: started}
	c := &r.Config
	c.WS, c.HTTP, c.EndpointRewrite = cfg.WS, cfg.HTTP, cfg.EndpointRewrite
	c.Conns, c.Ramp, c.Channels = cfg.Conns, cfg.Ramp, cfg.Channels
	c.Hold, c.Rate, c.Duration = cfg.Hold.String(), cfg.Rate, cfg.Duration.String()
	c.Ack, c.MinEstablished = cfg.Ack.String(), cfg.MinEstablished
	if cfg.Scenario == ScenarioStorm {
		c.StormPct = cfg.StormPct
	}
	r.Connections.Target = cfg.Conns
	r.Puts.Status = map[string]uint64{}
	r.Closes = map[string]uint64{}
	r.Errors = map[string]uint64{}
	r.LatencyMs = map[string]Summary{}
	for _, n := range kindNames {
		r.LatencyMs[n] = Summary{}
	}
	r.Series = []SeriesPoint{}
	return r
}

// fill sets the report's figures from the merged result.
func (r *Report) fill(p *Partial, series []SeriesPoint, peakOpen int64, elapsed time.Duration, procs int) {
	c := p.Counts
	r.Elapsed = elapsed.Seconds()
	r.Processes = procs
	r.Connections.Target = p.Target
	r.Connections.Established, r.Connections.Failed, r.Connections.Retries = c.Established, c.Failed, c.Retries
	r.Connections.PeakOpen = peakOpen
	r.Hellos.OK, r.Hellos.Failed = c.Hellos, c.HelloFailures
	if r.Scenario == string(ScenarioHelloRate) {
		r.Connections.Established = c.Hellos
		r.Connections.Failed = c.Dialed - min(c.Dialed, c.Hellos)
		if p.Seconds > 0 {
			r.Hellos.PerSecond = float64(c.Hellos) / p.Seconds
		}
	}
	r.Registers.OK, r.Registers.Failed = c.Registers, c.RegisterFailures
	r.Puts.Planned, r.Puts.Sent, r.Puts.Errors = p.PutsPlanned, c.PutsSent, c.PutErrors
	for k, v := range c.PutStatus {
		r.Puts.Status[k] = v
	}
	if p.Seconds > 0 && r.Scenario == string(ScenarioSteady) {
		r.Puts.PerSecond = float64(c.responses()) / p.Seconds
	}
	r.Notifications.Received, r.Notifications.Versions, r.Notifications.Duplicates = c.Notifications, c.Versions, c.Duplicates
	r.Notifications.Superseded = c.Superseded
	if ok200, settled := c.PutStatus["200"], c.Versions+c.Superseded; ok200 > settled {
		r.Notifications.Missing = ok200 - settled
	}
	r.Acks.Sent = c.Acks
	if r.Scenario == string(ScenarioStorm) {
		r.Storm = &StormStats{c.Dropped, c.Reconnected, c.ReconnectFailures, c.UAIDResets}
	}
	for k, v := range c.Closes {
		r.Closes[k] = v
	}
	for k, v := range c.Errors {
		r.Errors[k] = v
	}
	r.Memory = p.Memory
	for k, h := range p.hists {
		r.LatencyMs[kindNames[k]] = summarize(h)
	}
	if series != nil {
		r.Series = series
	}
	r.Notes = p.Notes
}

// check applies the pass criteria: enough connections established (or,
// in hello-rate, enough hellos answered).
func (r *Report) check(minEstablished float64) error {
	if minEstablished < 0 {
		return nil
	}
	need := uint64(math.Ceil(minEstablished * float64(r.Connections.Target)))
	if r.Connections.Target == 0 || r.Connections.Established < need {
		return fmt.Errorf("%w: %d of %d (need %d)", ErrTooFewConnections, r.Connections.Established, r.Connections.Target, need)
	}
	return nil
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	return nil
}

// Write writes report.json and report.html into dir, creating it.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	if err := r.WriteJSON(filepath.Join(dir, "report.json")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), r.HTML(), 0o644); err != nil {
		return fmt.Errorf("loadtest: report: %w", err)
	}
	return nil
}
