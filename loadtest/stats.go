package loadtest

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// kind is one measured latency.
type kind uint8

const (
	kConnect           kind = iota // dial start -> 101 Switching Protocols
	kHello                         // hello sent -> hello reply
	kRegister                      // register sent -> register reply
	kPutResponse                   // PUT intended send time -> response
	kPutToNotification             // PUT intended send time -> notification received
	kReconnect                     // drop -> hello answered again (storm)
	numKinds
)

// kindNames are the report's names for the kinds, in kind order.
var kindNames = [numKinds]string{"connect", "hello", "register", "put_response", "put_to_notification", "reconnect"}

func kindByName(name string) (kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return kind(k), true
		}
	}
	return 0, false
}

// Histograms record microseconds from 1 us to 10 minutes with three
// significant digits; larger values are clamped to the top.
const (
	histMin    = 1
	histMax    = 600_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// newResidentHist is a histogram whose counts are written once, so that
// its pages are resident from the start: a run's memory per connection
// then does not count histogram pages first touched during the ramp.
func newResidentHist() *hdrhistogram.Histogram {
	h := newHist()
	h.Reset()
	return h
}

func recordUS(h *hdrhistogram.Histogram, us int64) {
	_ = h.RecordValue(min(max(us, histMin), histMax))
}

// encodeHist is the wire form of a histogram (V2 compressed, base64).
func encodeHist(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("loadtest: encode histogram: %w", err)
	}
	return string(b), nil
}

func decodeHist(s string) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("loadtest: decode histogram: %w", err)
	}
	return h, nil
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// summarize reads a histogram of microseconds as a Summary.
func summarize(h *hdrhistogram.Histogram) Summary {
	if h == nil || h.TotalCount() == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Summary{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// Counts are the events of a run or of one second of it. They add, so
// workers' counts and seconds merge by Add.
type Counts struct {
	Dialed            uint64            `json:"dialed,omitempty"`
	Established       uint64            `json:"established,omitempty"`
	Failed            uint64            `json:"failed,omitempty"`
	Retries           uint64            `json:"retries,omitempty"`
	Hellos            uint64            `json:"hellos,omitempty"`
	HelloFailures     uint64            `json:"hello_failures,omitempty"`
	Registers         uint64            `json:"registers,omitempty"`
	RegisterFailures  uint64            `json:"register_failures,omitempty"`
	PutsSent          uint64            `json:"puts_sent,omitempty"`
	PutErrors         uint64            `json:"put_errors,omitempty"`
	PutStatus         map[string]uint64 `json:"put_status,omitempty"`
	Notifications     uint64            `json:"notifications,omitempty"`
	Versions          uint64            `json:"versions,omitempty"`
	Duplicates        uint64            `json:"duplicates,omitempty"`
	Superseded        uint64            `json:"superseded,omitempty"`
	Acks              uint64            `json:"acks,omitempty"`
	Dropped           uint64            `json:"dropped,omitempty"`
	Reconnected       uint64            `json:"reconnected,omitempty"`
	ReconnectFailures uint64            `json:"reconnect_failures,omitempty"`
	UAIDResets        uint64            `json:"uaid_resets,omitempty"`
	Closes            map[string]uint64 `json:"closes,omitempty"`
	Errors            map[string]uint64 `json:"errors,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Dialed += o.Dialed
	c.Established += o.Established
	c.Failed += o.Failed
	c.Retries += o.Retries
	c.Hellos += o.Hellos
	c.HelloFailures += o.HelloFailures
	c.Registers += o.Registers
	c.RegisterFailures += o.RegisterFailures
	c.PutsSent += o.PutsSent
	c.PutErrors += o.PutErrors
	c.Notifications += o.Notifications
	c.Versions += o.Versions
	c.Duplicates += o.Duplicates
	c.Superseded += o.Superseded
	c.Acks += o.Acks
	c.Dropped += o.Dropped
	c.Reconnected += o.Reconnected
	c.ReconnectFailures += o.ReconnectFailures
	c.UAIDResets += o.UAIDResets
	c.PutStatus = addMap(c.PutStatus, o.PutStatus)
	c.Closes = addMap(c.Closes, o.Closes)
	c.Errors = addMap(c.Errors, o.Errors)
}

// sub returns c - prev for counts that only grow.
func (c Counts) sub(prev Counts) Counts {
	d := Counts{
		Dialed:            c.Dialed - prev.Dialed,
		Established:       c.Established - prev.Established,
		Failed:            c.Failed - prev.Failed,
		Retries:           c.Retries - prev.Retries,
		Hellos:            c.Hellos - prev.Hellos,
		HelloFailures:     c.HelloFailures - prev.HelloFailures,
		Registers:         c.Registers - prev.Registers,
		RegisterFailures:  c.RegisterFailures - prev.RegisterFailures,
		PutsSent:          c.PutsSent - prev.PutsSent,
		PutErrors:         c.PutErrors - prev.PutErrors,
		Notifications:     c.Notifications - prev.Notifications,
		Versions:          c.Versions - prev.Versions,
		Duplicates:        c.Duplicates - prev.Duplicates,
		Superseded:        c.Superseded - prev.Superseded,
		Acks:              c.Acks - prev.Acks,
		Dropped:           c.Dropped - prev.Dropped,
		Reconnected:       c.Reconnected - prev.Reconnected,
		ReconnectFailures: c.ReconnectFailures - prev.ReconnectFailures,
		UAIDResets:        c.UAIDResets - prev.UAIDResets,
	}
	d.PutStatus = subMap(c.PutStatus, prev.PutStatus)
	d.Closes = subMap(c.Closes, prev.Closes)
	d.Errors = subMap(c.Errors, prev.Errors)
	return d
}

// responses is the number of PUTs that got an HTTP answer.
func (c Counts) responses() uint64 { return sumMap(c.PutStatus) }

// errorTotal is every error of every kind.
func (c Counts) errorTotal() uint64 { return sumMap(c.Errors) }

func addMap(dst, src map[string]uint64) map[string]uint64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]uint64, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

func subMap(cur, prev map[string]uint64) map[string]uint64 {
	var d map[string]uint64
	for k, v := range cur {
		if n := v - prev[k]; n > 0 {
			if d == nil {
				d = make(map[string]uint64)
			}
			d[k] = n
		}
	}
	return d
}

func sumMap(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// sortedKeys returns m's keys in order (numeric keys numerically).
func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}

// maxStatus bounds the HTTP status codes counted individually; others
// count as "other".
const maxStatus = 600

// recorder collects one process's events. Every method is safe for
// concurrent use and none blocks for long: event loops call them.
type recorder struct {
	dialed, established, failed       atomic.Uint64
	retries                           atomic.Uint64
	hellos, helloFailures             atomic.Uint64
	registers, registerFailures       atomic.Uint64
	putsSent, putErrors               atomic.Uint64
	putStatus                         [maxStatus]atomic.Uint64
	notifications, versions, dups     atomic.Uint64
	superseded                        atomic.Uint64
	acks                              atomic.Uint64
	dropped, reconnected, reconnFails atomic.Uint64
	uaidResets                        atomic.Uint64
	open                              atomic.Int64

	mu struct {
		sync.Mutex
		closes map[string]uint64
		errors map[string]uint64
	}

	hist [numKinds]histPair
}

// histPair holds one kind's histograms: cur since the last tick, total
// since the start. spare is swapped with cur at a tick.
type histPair struct {
	mu    sync.Mutex
	cur   *hdrhistogram.Histogram // guarded by mu
	total *hdrhistogram.Histogram // guarded by mu
	spare *hdrhistogram.Histogram // owned by the ticking goroutine
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.hist {
		r.hist[i] = histPair{cur: newResidentHist(), total: newResidentHist(), spare: newResidentHist()}
	}
	return r
}

// latency records us microseconds of kind k.
func (r *recorder) latency(k kind, us int64) {
	h := &r.hist[k]
	h.mu.Lock()
	recordUS(h.cur, us)
	recordUS(h.total, us)
	h.mu.Unlock()
}

func (r *recorder) status(code int) {
	if code < 0 || code >= maxStatus {
		r.errorf("put_status_other")
		return
	}
	r.putStatus[code].Add(1)
}

// errorf counts an error of the named kind.
func (r *recorder) errorf(name string) {
	r.mu.Lock()
	if r.mu.errors == nil {
		r.mu.errors = make(map[string]uint64)
	}
	r.mu.errors[name]++
	r.mu.Unlock()
}

// closed counts a connection the server closed, by close code ("1006":
// no close frame).
func (r *recorder) closed(code uint16) {
	r.mu.Lock()
	if r.mu.closes == nil {
		r.mu.closes = make(map[string]uint64)
	}
	r.mu.closes[strconv.Itoa(int(code))]++
	r.mu.Unlock()
}

// counts is a snapshot of every counter.
func (r *recorder) counts() Counts {
	c := Counts{
		Dialed:            r.dialed.Load(),
		Established:       r.established.Load(),
		Failed:            r.failed.Load(),
		Retries:           r.retries.Load(),
		Hellos:            r.hellos.Load(),
		HelloFailures:     r.helloFailures.Load(),
		Registers:         r.registers.Load(),
		RegisterFailures:  r.registerFailures.Load(),
		PutsSent:          r.putsSent.Load(),
		PutErrors:         r.putErrors.Load(),
		Notifications:     r.notifications.Load(),
		Versions:          r.versions.Load(),
		Duplicates:        r.dups.Load(),
		Superseded:        r.superseded.Load(),
		Acks:              r.acks.Load(),
		Dropped:           r.dropped.Load(),
		Reconnected:       r.reconnected.Load(),
		ReconnectFailures: r.reconnFails.Load(),
		UAIDResets:        r.uaidResets.Load(),
	}
	for code := range r.putStatus {
		if n := r.putStatus[code].Load(); n > 0 {
			if c.PutStatus == nil {
				c.PutStatus = make(map[string]uint64)
			}
			c.PutStatus[strconv.Itoa(code)] = n
		}
	}
	r.mu.Lock()
	c.Closes = maps.Clone(r.mu.closes)
	c.Errors = maps.Clone(r.mu.errors)
	r.mu.Unlock()
	return c
}

// swapIntervals swaps out each kind's histogram of the last interval and
// returns the non-empty ones (nil for empty kinds); they stay valid until
// resetIntervals. Only one goroutine (the ticker) may call these two.
func (r *recorder) swapIntervals() [numKinds]*hdrhistogram.Histogram {
	var out [numKinds]*hdrhistogram.Histogram
	for k := range r.hist {
		h := &r.hist[k]
		h.mu.Lock()
		h.cur, h.spare = h.spare, h.cur
		h.mu.Unlock()
		if h.spare.TotalCount() > 0 {
			out[k] = h.spare
		}
	}
	return out
}

// resetIntervals clears the histograms swapIntervals returned.
func (r *recorder) resetIntervals() {
	for k := range r.hist {
		if h := r.hist[k].spare; h.TotalCount() > 0 {
			h.Reset()
		}
	}
}

// totals passes each kind's whole-run histogram to f, under its lock.
func (r *recorder) totals(f func(k kind, h *hdrhistogram.Histogram)) {
	for k := range r.hist {
		h := &r.hist[k]
		h.mu.Lock()
		f(kind(k), h.total)
		h.mu.Unlock()
	}
}
