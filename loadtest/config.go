package loadtest

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Scenario names what a run does after (or instead of) the ramp.
type Scenario string

// The scenarios.
const (
	// ScenarioSteady ramps, holds, then PUTs open loop at Config.Rate for
	// Config.Duration.
	ScenarioSteady Scenario = "steady"
	// ScenarioStorm ramps, holds, then drops Config.StormPct percent of
	// the connections at once and reconnects them.
	ScenarioStorm Scenario = "storm"
	// ScenarioIdle ramps and holds.
	ScenarioIdle Scenario = "idle"
	// ScenarioHelloRate connects and says hello as fast as
	// Config.Parallel connections in flight allow, for Config.Duration,
	// closing each connection after its hello.
	ScenarioHelloRate Scenario = "hello-rate"
)

// AckKind says whether and when a device acknowledges a notification.
type AckKind uint8

// The ack kinds.
const (
	AckNow      AckKind = iota // at once
	AckDelay                   // after AckMode.Delay
	AckNever                   // never
	AckFraction                // at once with probability AckMode.Fraction, else never
)

// AckMode is how every device acknowledges notifications. The zero value
// acks at once. Its text form is "now", "delay=<duration>", "never" or
// "fraction=<0..1>".
type AckMode struct {
	Kind     AckKind
	Delay    time.Duration
	Fraction float64
}

// ParseAckMode parses an AckMode's text form.
func ParseAckMode(s string) (AckMode, error) {
	var a AckMode
	return a, a.UnmarshalText([]byte(s))
}

// String returns the text form.
func (a AckMode) String() string {
	switch a.Kind {
	case AckDelay:
		return "delay=" + a.Delay.String()
	case AckNever:
		return "never"
	case AckFraction:
		return "fraction=" + strconv.FormatFloat(a.Fraction, 'g', -1, 64)
	}
	return "now"
}

// MarshalText implements encoding.TextMarshaler.
func (a AckMode) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *AckMode) UnmarshalText(b []byte) error {
	s := string(b)
	switch {
	case s == "" || s == "now":
		*a = AckMode{Kind: AckNow}
	case s == "never":
		*a = AckMode{Kind: AckNever}
	case strings.HasPrefix(s, "delay="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "delay="))
		if err != nil || d < 0 {
			return fmt.Errorf("loadtest: ack %q: want delay=<duration>", s)
		}
		*a = AckMode{Kind: AckDelay, Delay: d}
	case strings.HasPrefix(s, "fraction="):
		f, err := strconv.ParseFloat(strings.TrimPrefix(s, "fraction="), 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("loadtest: ack %q: want fraction=<0..1>", s)
		}
		*a = AckMode{Kind: AckFraction, Fraction: f}
	default:
		return fmt.Errorf("loadtest: ack %q: want now, delay=<duration>, never or fraction=<0..1>", s)
	}
	return nil
}

// Config configures a run. The zero value of every field means the
// default named in its comment; Run never mutates the caller's Config.
// A Config travels to worker processes as JSON, so the fields that cannot
// (Progress, Logger) are not part of that form.
type Config struct {
	// WS are the client WebSocket targets, "ws://host:port[/]" or
	// "host:port"; connections are spread over them round robin.
	// Required.
	WS []string
	// HTTP are the ingest targets, "http://host:port" or "host:port". PUTs
	// go to the endpoints that register returned, unless EndpointRewrite
	// is set; then the endpoint's host is replaced by one of these, spread
	// round robin. Zero means none (required with EndpointRewrite).
	HTTP []string
	// EndpointRewrite sends PUTs to the HTTP targets instead of the host
	// named in each endpoint URL. Zero means endpoints are used as given.
	EndpointRewrite bool

	// Scenario is what the run does. Zero means ScenarioSteady.
	Scenario Scenario
	// Conns is the number of connections to ramp. Zero means 1,000.
	Conns int
	// Ramp is how many connections start per second. Zero means 1,000.
	Ramp float64
	// Channels is how many channels each connection registers after its
	// hello. Zero means 1; a negative value means none.
	Channels int
	// Hold is how long the ramped connections stay idle before the
	// scenario goes on. Zero means no hold.
	Hold time.Duration
	// Rate is PUTs per second in the steady scenario. Zero means 1,000.
	Rate float64
	// Duration is the PUT phase (steady) or the whole run (hello-rate).
	// Zero means 10s.
	Duration time.Duration
	// Ack is how devices acknowledge notifications. Zero means at once.
	Ack AckMode
	// StormPct is the percentage of connections the storm scenario drops.
	// Zero means 10.
	StormPct float64
	// MinEstablished is the fraction of Conns that must be established
	// (hello and every register answered 200) for the run to pass. Zero
	// means 0.99; a negative value means no minimum.
	MinEstablished float64

	// Parallel is how many dials (and, in hello-rate, connections) may be
	// in progress at once in one process. Zero means 64.
	Parallel int
	// PutConns is how many PUTs may be outstanding at once (one HTTP
	// connection each). Zero means 256.
	PutConns int
	// SetupRetries is how many more times a device whose set-up failed
	// (dial refused, or closed by the server before its hello and
	// registers were answered) dials again, after a jittered back-off that
	// doubles from 1 s up to 16 s, as devices do after a refusal. Zero
	// means none.
	SetupRetries int
	// SetupTimeout bounds one connection's dial, handshake, hello and
	// registers, and the wait for stragglers after the ramp. Zero means
	// 30s.
	SetupTimeout time.Duration
	// Drain is the longest wait for outstanding notifications after the
	// last PUT. Zero means 5s.
	Drain time.Duration
	// EventLoops is the number of gnet event loops per process. Zero means
	// one per CPU.
	EventLoops int
	// MaxConnsPerProcess caps the connections one process holds; beyond
	// it Run starts worker processes. Zero means the open-files limit
	// minus a reserve.
	MaxConnsPerProcess int
	// WorkerCommand starts one worker process (its stdin and stdout carry
	// the worker protocol, see RunWorker). Nil means this executable with
	// the argument "-worker", which must then call RunWorker (cmd/pushload
	// does).
	WorkerCommand []string
	// CommandLine is recorded in the report. Nil means os.Args.
	CommandLine []string

	// Progress receives a summary once a second. Nil means none.
	Progress func(Progress) `json:"-"`
	// Logger receives warnings (worker output, late connections). Nil
	// means slog.Default().
	Logger *slog.Logger `json:"-"`
}

// Errors a run can fail with.
var (
	// ErrUnreachable: a target refused or timed out the first connection.
	ErrUnreachable = errors.New("loadtest: target unreachable")
	// ErrTooFewConnections: fewer connections were established than
	// Config.MinEstablished asks for.
	ErrTooFewConnections = errors.New("loadtest: too few connections established")
	// ErrWorker: a worker process failed or sent no result.
	ErrWorker = errors.New("loadtest: worker failed")
)

// withDefaults returns a copy of c with defaults applied.
func (c Config) withDefaults() Config {
	c.WS = append([]string(nil), c.WS...)
	c.HTTP = append([]string(nil), c.HTTP...)
	if c.Scenario == "" {
		c.Scenario = ScenarioSteady
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.Conns, 1000)
	defFloat(&c.Ramp, 1000)
	defInt(&c.Channels, 1)
	if c.Channels < 0 {
		c.Channels = 0
	}
	defFloat(&c.Rate, 1000)
	defDur(&c.Duration, 10*time.Second)
	defFloat(&c.StormPct, 10)
	defFloat(&c.MinEstablished, 0.99)
	defInt(&c.Parallel, 64)
	defInt(&c.PutConns, 256)
	defDur(&c.SetupTimeout, 30*time.Second)
	defDur(&c.Drain, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	switch c.Scenario {
	case ScenarioSteady, ScenarioStorm, ScenarioIdle, ScenarioHelloRate:
	default:
		return fmt.Errorf("loadtest: unknown scenario %q", c.Scenario)
	}
	if len(c.WS) == 0 {
		return errors.New("loadtest: no WebSocket target")
	}
	if c.EndpointRewrite && len(c.HTTP) == 0 {
		return errors.New("loadtest: endpoint rewrite needs an HTTP target")
	}
	if c.Conns < 0 || c.Ramp < 0 || c.Rate < 0 || c.Duration < 0 || c.Hold < 0 {
		return errors.New("loadtest: negative count, rate or duration")
	}
	if c.Scenario == ScenarioSteady && plannedPuts(c.Rate, c.Duration) > maxPlannedPuts {
		return fmt.Errorf("loadtest: rate x duration is over %d PUTs", maxPlannedPuts)
	}
	if c.StormPct < 0 || c.StormPct > 100 {
		return fmt.Errorf("loadtest: storm percentage %v outside 0..100", c.StormPct)
	}
	if c.SetupRetries < 0 || c.SetupRetries > 255 {
		return fmt.Errorf("loadtest: setup retries %d not in 0..255", c.SetupRetries)
	}
	if c.SetupRetries > 0 && c.Scenario == ScenarioHelloRate {
		return errors.New("loadtest: setup retries do not apply to hello-rate, which dials without end")
	}
	if c.Parallel < 0 || c.PutConns < 0 {
		return errors.New("loadtest: negative parallelism")
	}
	return nil
}
