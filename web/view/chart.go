package view

import (
	"strconv"
)

// The chart component draws server-side SVG: the page needs no script to
// show a chart, and the numbers a chart draws are in its markup (each
// mark carries its value in a title and a data attribute) for screen
// readers and tests.

// ChartSeries is one series of a chart: its legend text and the CSS class
// that colours its marks.
type ChartSeries struct {
	Label string
	Class string
}

// ChartTick is a label under the time axis at bucket At.
type ChartTick struct {
	At    int
	Label string
}

// TimeChart is a stacked column chart over equal time buckets.
type TimeChart struct {
	ID     string
	Title  string // the accessible name of the drawing
	Series []ChartSeries
	// Values holds per bucket one value per series, stacked from the
	// bottom in series order.
	Values [][]int64
	// BucketLabels names each bucket in a mark's title ("10:20–10:30").
	BucketLabels []string
	Ticks        []ChartTick
	// Now is the bucket the current time falls in, -1 if outside the
	// chart: it is marked so the empty rest of the day reads as future;
	// NowLabel is written by the mark.
	Now      int
	NowLabel string
}

// BarChart is a horizontal bar chart, one stacked bar per row.
type BarChart struct {
	ID     string
	Title  string
	Series []ChartSeries
	Rows   []BarRow
	// Narrow: the chart shares a row of the page with another.
	Narrow bool
}

// BarRow is one bar: its label, an optional second label in lighter
// type after it (the label in the other language, or the appliance), and
// one value per series.
type BarRow struct {
	Label  string
	Sub    string
	Values []int64
}

// Geometry of the drawings, in viewBox units.
const (
	timeW, timeH         = 720, 240
	timeLeft, timeBottom = 48, 24
	timeTop, timeRight   = 22, 8
	// A bar chart's row: its label on a line, the bar under it, the
	// total at the bar's end.
	barW, barNarrowW = 720, 480
	barRowH, barTop  = 46, 24
	barH, barRight   = 16, 64
)

// svgRect is one mark of a chart, ready for markup.
type svgRect struct {
	X, Y, W, H string
	Class      string
	Title      string
	Value      int64
	Bucket     int // the column of a time chart
}

// svgLine is a grid line with its label.
type svgLine struct {
	X1, Y1, X2, Y2 string
	LX, LY         string
	Label          string
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func sum(vs []int64) int64 {
	var s int64
	for _, v := range vs {
		s += v
	}
	return s
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, so the
// axis labels are round numbers.
func niceMax(v int64) int64 {
	if v < 1 {
		return 1
	}
	p := int64(1)
	for {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= v {
				return m * p
			}
		}
		p *= 10
	}
}

func (c TimeChart) max() int64 {
	var m int64
	for _, b := range c.Values {
		m = max(m, sum(b))
	}
	return niceMax(m)
}

func (c TimeChart) colW() float64 {
	if len(c.Values) == 0 {
		return 0
	}
	return float64(timeW-timeLeft-timeRight) / float64(len(c.Values))
}

func (c TimeChart) viewBox() string { return "0 0 " + strconv.Itoa(timeW) + " " + strconv.Itoa(timeH) }

// rects are the columns' segments, bottom up.
func (c TimeChart) rects() []svgRect {
	top := float64(c.max())
	plotH := float64(timeH - timeTop - timeBottom)
	w := c.colW()
	var out []svgRect
	for i, b := range c.Values {
		y := float64(timeH - timeBottom)
		for s, v := range b {
			if v == 0 || s >= len(c.Series) {
				continue
			}
			h := float64(v) / top * plotH
			y -= h
			title := c.Series[s].Label + " " + Number(v)
			if i < len(c.BucketLabels) {
				title = c.BucketLabels[i] + " · " + title
			}
			out = append(out, svgRect{
				X: f(timeLeft + float64(i)*w + w*0.1), Y: f(y), W: f(w * 0.8), H: f(h),
				Class: c.Series[s].Class, Title: title, Value: v, Bucket: i,
			})
		}
	}
	return out
}

// grid is the horizontal lines at zero, half and the top of the axis.
func (c TimeChart) grid() []svgLine {
	m := c.max()
	plotH := float64(timeH - timeTop - timeBottom)
	var out []svgLine
	for _, v := range []int64{0, m / 2, m} {
		y := float64(timeH-timeBottom) - float64(v)/float64(m)*plotH
		out = append(out, svgLine{
			X1: f(timeLeft), Y1: f(y), X2: f(timeW - timeRight), Y2: f(y),
			LX: f(timeLeft - 6), LY: f(y + 4), Label: Number(v),
		})
	}
	return out
}

func (c TimeChart) tickX(t ChartTick) string {
	return f(timeLeft + float64(t.At)*c.colW())
}

func (c TimeChart) nowX() string { return f(timeLeft + (float64(c.Now)+0.5)*c.colW()) }

// Totals is each series' sum over the chart.
func (c TimeChart) Totals() []int64 {
	out := make([]int64, len(c.Series))
	for _, b := range c.Values {
		for s, v := range b {
			if s < len(out) {
				out[s] += v
			}
		}
	}
	return out
}

func (c BarChart) max() int64 {
	var m int64
	for _, r := range c.Rows {
		m = max(m, sum(r.Values))
	}
	return max(m, 1)
}

// width is the drawing's width: a narrow chart shares a row of the page
// with another and is drawn at about its size on screen, so its text
// stays readable.
func (c BarChart) width() int {
	if c.Narrow {
		return barNarrowW
	}
	return barW
}

func (c BarChart) height() int { return max(1, len(c.Rows)) * barRowH }

func (c BarChart) viewBox() string {
	return "0 0 " + strconv.Itoa(c.width()) + " " + strconv.Itoa(c.height())
}

func (c BarChart) scale() float64 {
	return float64(c.width()-barRight) / float64(c.max())
}

// barRects are row i's segments, left to right, under its label.
func (c BarChart) barRects(i int) []svgRect {
	r := c.Rows[i]
	x := 0.0
	var out []svgRect
	for s, v := range r.Values {
		if v == 0 || s >= len(c.Series) {
			continue
		}
		w := float64(v) * c.scale()
		out = append(out, svgRect{
			X: f(x), Y: itoa(int64(i*barRowH + barTop)), W: f(w), H: itoa(barH),
			Class: c.Series[s].Class, Title: r.Label + " · " + c.Series[s].Label + " " + Number(v), Value: v,
		})
		x += w
	}
	return out
}

func (c BarChart) labelY(i int) string { return itoa(int64(i*barRowH + barTop - 6)) }

func (c BarChart) totalY(i int) string { return itoa(int64(i*barRowH + barTop + barH - 3)) }

func (c BarChart) totalX(i int) string {
	return f(float64(sum(c.Rows[i].Values))*c.scale() + 6)
}

func (c BarChart) total(i int) string { return strconv.FormatInt(sum(c.Rows[i].Values), 10) }

// Number writes a count with thousands separators ("20,000"), as both
// languages read them.
func Number(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := v < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
