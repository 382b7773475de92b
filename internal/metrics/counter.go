package metrics

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// Counter is a monotonically increasing count. Its methods are lock-free
// and safe for concurrent use.
type Counter struct {
	v atomic.Uint64
	_ [cacheLine - 8]byte
}

// Inc adds 1.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the current count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Counter registers and returns a counter.
func (r *Registry) Counter(name, help string) *Counter {
	c := new(Counter)
	r.register(&metric{name: name, help: help, typ: "counter", appendSamples: func(b []byte) []byte {
		var num [20]byte
		return appendSample(b, name, "", "", strconv.AppendUint(num[:0], c.Load(), 10))
	}})
	return c
}

// OtherValue is the label value under which CounterVec.With counts values
// it was not given at registration.
const OtherValue = "other"

// CounterVec is a family of counters with one label whose values are fixed
// at registration. With is lock-free and does not allocate.
type CounterVec struct {
	byValue map[string]*Counter // read-only after construction
	other   *Counter
}

// With returns the counter for the label value v, or the counter for
// OtherValue if v was not given at registration. Callers on a hot path
// can keep the result instead of calling With each time.
func (v *CounterVec) With(value string) *Counter {
	if c, ok := v.byValue[value]; ok {
		return c
	}
	return v.other
}

// CounterVec registers a counter family with one label and returns it.
// Every value in values, and OtherValue, is exposed from the start (as 0),
// in the order given with OtherValue last unless it is listed. A label name
// that is invalid or reserved ("le", "__*"), or a repeated value, panics.
func (r *Registry) CounterVec(name, help, label string, values ...string) *CounterVec {
	if !validLabelName(label) {
		panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, label))
	}
	order := append([]string(nil), values...)
	if !contains(order, OtherValue) {
		order = append(order, OtherValue)
	}
	counters := make([]Counter, len(order))
	v := &CounterVec{byValue: make(map[string]*Counter, len(order))}
	for i, val := range order {
		if _, dup := v.byValue[val]; dup {
			panic(fmt.Sprintf("metrics: %s: label value %q given twice", name, val))
		}
		v.byValue[val] = &counters[i]
	}
	v.other = v.byValue[OtherValue]
	r.register(&metric{name: name, help: help, typ: "counter", appendSamples: func(b []byte) []byte {
		var num [20]byte
		for i, val := range order {
			b = appendSample(b, name, label, val, strconv.AppendUint(num[:0], counters[i].Load(), 10))
		}
		return b
	}})
	return v
}

// CounterFunc registers a counter whose value is f(), called at each
// scrape (see the package doc for what f may do). f must never decrease.
func (r *Registry) CounterFunc(name, help string, f func() float64) {
	r.registerFunc(name, help, "counter", f)
}

func (r *Registry) registerFunc(name, help, typ string, f func() float64) {
	if f == nil {
		panic(fmt.Sprintf("metrics: %s: nil function", name))
	}
	r.register(&metric{name: name, help: help, typ: typ, appendSamples: func(b []byte) []byte {
		var num [32]byte
		return appendSample(b, name, "", "", appendFloat(num[:0], f()))
	}})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
