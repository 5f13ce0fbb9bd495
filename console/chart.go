package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are drawn by the server as inline SVG: bars and lines placed in a
// fixed grid of 60 intervals with "now" at the right edge, colours from
// the stylesheet (classes, since the page's CSP allows no inline styles),
// and a <title> per bar for the browser's own tooltip.

const (
	chartW, chartH = 640, 150
	plotL, plotR   = 44, 632
	plotT, plotB   = 10, 126
	slots          = 60
	slotW          = float64(plotR-plotL) / slots
	barGap         = 1.0
)

// chart is what the "chart" template draws.
type chart struct {
	Label  string
	W, H   int
	X0, X1 float64
	Y0, Y1 float64
	Bars   []bar
	Line   string // polyline points, for a gauge
	Area   string // polygon points under the line
	LineCl string
	YTicks []tick
	XTicks []tick
	Legend []legend
	Empty  bool
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	X, Y   float64
	Label  string
	Anchor string // text-anchor of an x label: the edges' stay inside
}

type legend struct {
	Class, Label, Total string
}

// series is one stacked value of a bar chart: how much it grew from one
// sample to the next.
type series struct {
	name, class string
	value       func(a, b sample) float64
}

func newChart(label string, every time.Duration) chart {
	c := chart{Label: label, W: chartW, H: chartH, X0: plotL, X1: plotR, Y0: plotT, Y1: plotB}
	for k := 0; k <= slots; k += slots / 4 {
		lbl := "now"
		if k < slots {
			lbl = "−" + shortDur(time.Duration(slots-k)*every)
		}
		anchor := "middle"
		if k == slots {
			anchor = "end"
		}
		c.XTicks = append(c.XTicks, tick{X: plotL + float64(k)*slotW, Y: chartH - 8, Label: lbl, Anchor: anchor})
	}
	return c
}

// stacked draws one stacked bar per interval between consecutive samples;
// the last one is the interval in progress.
func stacked(label string, every time.Duration, w []sample, ss []series) chart {
	c := newChart(label, every)
	n := max(0, len(w)-1)
	if n > slots {
		w = w[len(w)-slots-1:]
		n = slots
	}
	totals := make([]float64, len(ss))
	heights := make([][]float64, n)
	peak := 0.0
	for i := 0; i < n; i++ {
		heights[i] = make([]float64, len(ss))
		sum := 0.0
		for j, s := range ss {
			v := s.value(w[i], w[i+1])
			heights[i][j] = v
			totals[j] += v
			sum += v
		}
		peak = math.Max(peak, sum)
	}
	top := c.yAxis(peak)
	for i := 0; i < n; i++ {
		x := plotL + float64(slots-n+i)*slotW
		y := float64(plotB)
		for j, s := range ss {
			v := heights[i][j]
			if v <= 0 {
				continue
			}
			h := v / top * (plotB - plotT)
			y -= h
			cl := s.class
			if i == n-1 {
				cl += " partial"
			}
			c.Bars = append(c.Bars, bar{X: x + barGap/2, Y: y, W: slotW - barGap, H: h, Class: cl,
				Title: fmt.Sprintf("%s: %s, %s – %s", s.name, num(v), w[i].at.Format("15:04:05"), w[i+1].at.Format("15:04:05"))})
		}
	}
	for j, s := range ss {
		// A series of many (the reasons) lists only those that occurred.
		if totals[j] > 0 || len(ss) <= 3 {
			c.Legend = append(c.Legend, legend{Class: s.class, Label: s.name, Total: num(totals[j])})
		}
	}
	c.Empty = peak == 0
	return c
}

// gauge draws a line of a gauge's value at each sample.
func gauge(label, class string, every time.Duration, w []sample, value func(sample) float64) chart {
	c := newChart(label, every)
	if len(w) > slots+1 {
		w = w[len(w)-slots-1:]
	}
	peak := 0.0
	for _, s := range w {
		peak = math.Max(peak, value(s))
	}
	top := c.yAxis(peak)
	var pts []string
	first := 0.0
	for i, s := range w {
		x := plotR - float64(len(w)-1-i)*slotW
		y := plotB - value(s)/top*(plotB-plotT)
		if i == 0 {
			first = x
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	if len(pts) > 0 {
		c.Line = strings.Join(pts, " ")
		c.Area = fmt.Sprintf("%.1f,%d %s %d,%d", first, plotB, c.Line, plotR, plotB)
		c.Legend = []legend{{Class: class, Label: "now", Total: num(value(w[len(w)-1]))}, {Class: class, Label: "highest", Total: num(peak)}}
	}
	c.LineCl = class
	c.Empty = peak == 0
	return c
}

// yAxis sets the ticks of a scale from 0 to a round number at or above
// peak, and returns that number.
func (c *chart) yAxis(peak float64) float64 {
	top := niceCeil(peak)
	for _, f := range []float64{0, 0.5, 1} {
		y := plotB - f*(plotB-plotT)
		c.YTicks = append(c.YTicks, tick{X: plotL - 6, Y: y, Label: num(f * top)})
	}
	return top
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 2, so
// that the half-way tick is a whole number).
func niceCeil(v float64) float64 {
	if v <= 2 {
		return 2
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// num writes a count as people read it: 7, 1,234, 12.5k, 3.2M.
func num(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v == math.Trunc(v):
		s := strconv.FormatFloat(v, 'f', 0, 64)
		if len(s) > 3 {
			s = s[:len(s)-3] + "," + s[len(s)-3:]
		}
		return s
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// shortDur writes 60m, 15m, 45s, 2h.
func shortDur(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d >= time.Second:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
	}
	return d.String()
}
