package loadtest

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// HTML renders the report as one self-contained page: inline CSS and SVG
// charts, no scripts, nothing loaded from anywhere. The markup is also
// well-formed XML.
func (r *Report) HTML() []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(&b, "<title>pushload %s</title>\n", esc(r.Scenario))
	b.WriteString("<style>\nbody{font-family:sans-serif;margin:2em;color:#222}\n" +
		"table{border-collapse:collapse;margin:0.5em 0 1.5em}\n" +
		"td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n" +
		"th{background:#f3f3f3}\ntd.l,th.l{text-align:left}\n" +
		".fail{color:#b00;font-weight:bold}\n.ok{color:#070;font-weight:bold}\n" +
		"code{background:#f6f6f6;padding:2px 4px;word-break:break-all}\nsvg{display:block;margin:0.5em 0 1.5em}\n</style>\n</head>\n<body>\n")
	fmt.Fprintf(&b, "<h1>pushload: %s</h1>\n", esc(r.Scenario))
	if r.Failure != "" {
		fmt.Fprintf(&b, "<p class=\"fail\">FAILED: %s</p>\n", esc(r.Failure))
	} else {
		b.WriteString("<p class=\"ok\">passed</p>\n")
	}
	fmt.Fprintf(&b, "<p>Command: <code>%s</code></p>\n", esc(strings.Join(r.Command, " ")))
	fmt.Fprintf(&b, "<p>Started %s, %.1f s, %d process(es).</p>\n", esc(r.Started.Format("2006-01-02 15:04:05 MST")), r.Elapsed, r.Processes)

	b.WriteString("<h2>Machine</h2>\n<table>\n")
	row(&b, "host", r.Machine.Host)
	row(&b, "CPU", fmt.Sprintf("%d x %s", r.Machine.CPUs, r.Machine.CPUModel))
	row(&b, "memory", r.Machine.Memory)
	row(&b, "OS", r.Machine.OS)
	row(&b, "Go", r.Machine.Go)
	b.WriteString("</table>\n")

	b.WriteString("<h2>Summary</h2>\n<table>\n")
	row(&b, "connections (target / established / failed / retries / peak open)", fmt.Sprintf("%d / %d / %d / %d / %d", r.Connections.Target, r.Connections.Established, r.Connections.Failed, r.Connections.Retries, r.Connections.PeakOpen))
	row(&b, "hellos (ok / failed)", fmt.Sprintf("%d / %d", r.Hellos.OK, r.Hellos.Failed))
	if r.Hellos.PerSecond > 0 {
		row(&b, "hellos per second", fmt.Sprintf("%.0f", r.Hellos.PerSecond))
	}
	row(&b, "registers (ok / failed)", fmt.Sprintf("%d / %d", r.Registers.OK, r.Registers.Failed))
	row(&b, "PUTs (planned / sent / transport errors)", fmt.Sprintf("%d / %d / %d", r.Puts.Planned, r.Puts.Sent, r.Puts.Errors))
	row(&b, "PUT answers per second", fmt.Sprintf("%.0f", r.Puts.PerSecond))
	row(&b, "notifications (messages / versions / duplicates)", fmt.Sprintf("%d / %d / %d", r.Notifications.Received, r.Notifications.Versions, r.Notifications.Duplicates))
	row(&b, "PUTs answered 200 without their own notification (superseded / missing)", fmt.Sprintf("%d / %d", r.Notifications.Superseded, r.Notifications.Missing))
	row(&b, "acks sent", fmt.Sprint(r.Acks.Sent))
	if s := r.Storm; s != nil {
		row(&b, "storm (dropped / reconnected / failed / UAID resets)", fmt.Sprintf("%d / %d / %d / %d", s.Dropped, s.Reconnected, s.Failed, s.UAIDResets))
	}
	if r.Memory.Conns > 0 {
		row(&b, "load generator RSS per connection", fmt.Sprintf("%.0f B (%d connections)", r.Memory.BytesPerConn, r.Memory.Conns))
	}
	b.WriteString("</table>\n")

	b.WriteString("<h2>Latency (ms)</h2>\n<table>\n<tr><th class=\"l\">what</th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n")
	for _, n := range kindNames {
		s := r.LatencyMs[n]
		fmt.Fprintf(&b, "<tr><td class=\"l\">%s</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n",
			esc(n), s.Count, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	b.WriteString("</table>\n")

	xs := make([]float64, len(r.Series))
	for i, p := range r.Series {
		xs[i] = p.Elapsed
	}
	pick := func(f func(SeriesPoint) float64) []float64 {
		ys := make([]float64, len(r.Series))
		for i, p := range r.Series {
			ys[i] = f(p)
		}
		return ys
	}
	pct := func(kind string, f func(Summary) float64) []float64 {
		return pick(func(p SeriesPoint) float64 {
			s, ok := p.Latency[kind]
			if !ok {
				return math.NaN()
			}
			return f(s)
		})
	}
	percentiles := func(kind string) []series {
		return []series{
			{"p50", "#1f77b4", pct(kind, func(s Summary) float64 { return s.P50 })},
			{"p90", "#2ca02c", pct(kind, func(s Summary) float64 { return s.P90 })},
			{"p99", "#ff7f0e", pct(kind, func(s Summary) float64 { return s.P99 })},
			{"p99.9", "#d62728", pct(kind, func(s Summary) float64 { return s.P999 })},
		}
	}
	b.WriteString("<h2>Over time</h2>\n")
	if r.LatencyMs[kindNames[kPutToNotification]].Count > 0 {
		lineChart(&b, "PUT -> notification latency per second (ms, from intended send time)", xs, percentiles(kindNames[kPutToNotification]))
		lineChart(&b, "PUT response latency per second (ms, from intended send time)", xs, percentiles(kindNames[kPutResponse]))
	}
	if r.LatencyMs[kindNames[kHello]].Count > 0 {
		lineChart(&b, "hello latency per second (ms)", xs, percentiles(kindNames[kHello]))
	}
	if r.LatencyMs[kindNames[kReconnect]].Count > 0 {
		lineChart(&b, "reconnect latency per second (ms, from the drop)", xs, percentiles(kindNames[kReconnect]))
	}
	lineChart(&b, "throughput (per second)", xs, []series{
		{"PUT answers", "#1f77b4", pick(func(p SeriesPoint) float64 { return float64(p.Responses) })},
		{"notifications", "#2ca02c", pick(func(p SeriesPoint) float64 { return float64(p.Notifications) })},
		{"hellos", "#9467bd", pick(func(p SeriesPoint) float64 { return float64(p.Hellos) })},
		{"errors", "#d62728", pick(func(p SeriesPoint) float64 { return float64(p.Errors) })},
	})
	lineChart(&b, "open connections", xs, []series{
		{"open", "#1f77b4", pick(func(p SeriesPoint) float64 { return float64(p.Open) })},
	})

	b.WriteString("<h2>Status breakdown</h2>\n")
	barChart(&b, "PUT answers by HTTP status", r.Puts.Status)
	barChart(&b, "connections closed by the server, by close code", r.Closes)
	barChart(&b, "errors by kind", r.Errors)
	if len(r.Notes) > 0 {
		b.WriteString("<h2>Notes</h2>\n<ul>\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "<li>%s</li>\n", esc(n))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</body>\n</html>\n")
	return []byte(b.String())
}

// esc escapes text for HTML and XML, and breaks up "://" so that no URL
// in the text reads as a reference to fetch.
func esc(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "://", "&#58;//")
}

func row(b *strings.Builder, k, v string) {
	fmt.Fprintf(b, "<tr><th class=\"l\">%s</th><td class=\"l\">%s</td></tr>\n", esc(k), esc(v))
}

// series is one line of a chart; NaN is a gap.
type series struct {
	name, color string
	ys          []float64
}

const (
	chartW, chartH                  = 760, 260
	padL, padR, padT, padB          = 64, 130, 28, 34
	plotW, plotH                    = chartW - padL - padR, chartH - padT - padB
	gridLines                       = 5
	legendX, legendY, legendSpacing = chartW - padR + 12, padT + 8, 18
)

// lineChart draws xs (seconds) against each series as inline SVG.
func lineChart(b *strings.Builder, title string, xs []float64, lines []series) {
	fmt.Fprintf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"16\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", padL, esc(title))
	if len(xs) == 0 {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\">no data</text>\n</svg>\n", padL, padT+plotH/2)
		return
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	if x1 <= x0 {
		x1 = x0 + 1
	}
	var ymax float64
	for _, l := range lines {
		for _, y := range l.ys {
			if !math.IsNaN(y) {
				ymax = max(ymax, y)
			}
		}
	}
	ymax = niceCeil(ymax)
	px := func(x float64) float64 { return padL + (x-x0)/(x1-x0)*plotW }
	py := func(y float64) float64 { return padT + plotH - y/ymax*plotH }
	for i := 0; i <= gridLines; i++ {
		v := ymax * float64(i) / gridLines
		y := py(v)
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", padL, y, padL+plotW, y)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", padL-6, y+4, esc(fmtNum(v)))
	}
	for i := 0; i <= gridLines; i++ {
		v := x0 + (x1-x0)*float64(i)/gridLines
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.1fs</text>\n", px(v), padT+plotH+16, v)
	}
	fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", padL, padT, plotW, plotH)
	for i, l := range lines {
		var pts strings.Builder
		flush := func() {
			if pts.Len() > 0 {
				fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>\n", l.color, strings.TrimSpace(pts.String()))
				pts.Reset()
			}
		}
		for j, y := range l.ys {
			if math.IsNaN(y) {
				flush()
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(xs[j]), py(y))
		}
		flush()
		ly := legendY + i*legendSpacing
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", legendX, ly, legendX+16, ly, l.color)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", legendX+20, ly+4, esc(l.name))
	}
	b.WriteString("</svg>\n")
}

// barChart draws counts by key as horizontal bars.
func barChart(b *strings.Builder, title string, counts map[string]uint64) {
	keys := sortedKeys(counts)
	const rowH = 20
	h := padT + max(1, len(keys))*rowH + 10
	fmt.Fprintf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", chartW, h, chartW, h, esc(title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"16\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", padL, esc(title))
	if len(keys) == 0 {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\">none</text>\n</svg>\n", padL, padT+14)
		return
	}
	var top uint64
	for _, k := range keys {
		top = max(top, counts[k])
	}
	for i, k := range keys {
		y := padT + i*rowH
		w := float64(counts[k]) / float64(top) * plotW
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", padL-6, y+13, esc(k))
		fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", padL, y+2, max(w, 1), rowH-4, barColor(k))
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%d</text>\n", float64(padL)+max(w, 1)+6, y+13, counts[k])
	}
	b.WriteString("</svg>\n")
}

func barColor(key string) string {
	switch {
	case strings.HasPrefix(key, "2"):
		return "#2ca02c"
	case strings.HasPrefix(key, "4"):
		return "#ff7f0e"
	default:
		return "#d62728"
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}
