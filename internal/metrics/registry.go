package metrics

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the Content-Type of WriteTo's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// cacheLine pads hot atomics so that two metrics updated from different
// cores do not share a cache line.
const cacheLine = 64

// Registry holds a process's metrics in registration order. The zero value
// is not usable; call NewRegistry.
type Registry struct {
	mu struct {
		sync.Mutex
		names   map[string]struct{} // every series name in use, suffixes included
		metrics []*metric           // append-only
	}
}

// metric is one family in the exposition.
type metric struct {
	name, help, typ string
	// appendSamples appends the family's sample lines. It reads atomics
	// and may call user functions; it is called without the registry lock.
	appendSamples func(b []byte) []byte
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.mu.names = make(map[string]struct{})
	return r
}

// register adds a family. It panics on an invalid name or on a name, or a
// name+suffix a histogram would use, that is already taken.
func (r *Registry) register(m *metric, suffixes ...string) {
	if !validMetricName(m.name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", m.name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := []string{m.name}
	for _, s := range suffixes {
		names = append(names, m.name+s)
	}
	for _, n := range names {
		if _, dup := r.mu.names[n]; dup {
			panic(fmt.Sprintf("metrics: %q registered twice", n))
		}
	}
	for _, n := range names {
		r.mu.names[n] = struct{}{}
	}
	r.mu.metrics = append(r.mu.metrics, m)
}

// WriteTo writes every metric, in registration order, in the Prometheus
// text format 0.0.4 (ContentType), with one Write call. It returns the
// bytes written and the writer's error.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	metrics := r.mu.metrics[:len(r.mu.metrics):len(r.mu.metrics)]
	r.mu.Unlock()

	b := make([]byte, 0, 256*len(metrics))
	for _, m := range metrics {
		if m.help != "" {
			b = append(b, "# HELP "...)
			b = append(b, m.name...)
			b = append(b, ' ')
			b = appendEscaped(b, m.help, false)
			b = append(b, '\n')
		}
		b = append(b, "# TYPE "...)
		b = append(b, m.name...)
		b = append(b, ' ')
		b = append(b, m.typ...)
		b = append(b, '\n')
		b = m.appendSamples(b)
	}
	n, err := w.Write(b)
	return int64(n), err
}

// appendSample appends one line: name{label="value"} v, with no braces
// when label is empty. The value is already formatted.
func appendSample(b []byte, name, label, value string, v []byte) []byte {
	b = append(b, name...)
	if label != "" {
		b = append(b, '{')
		b = append(b, label...)
		b = append(b, `="`...)
		b = appendEscaped(b, value, true)
		b = append(b, `"}`...)
	}
	b = append(b, ' ')
	b = append(b, v...)
	return append(b, '\n')
}

// appendEscaped escapes per the text format: in HELP text a backslash and
// a line feed; in a label value also a double quote.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats a sample value as Prometheus parses it.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func formatFloat(f float64) string { return string(appendFloat(nil, f)) }

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and is
// not reserved (a leading "__", or "le", which histograms use).
func validLabelName(s string) bool {
	if s == "" || s == "le" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
