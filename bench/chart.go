package main

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chart draws latest.png: the live p95 of every second over the whole run,
// each strategy's fill period shaded and named, and below it each
// strategy's rows/s.
func (rep *report) chart(path string) error {
	top, err := rep.latencyPlot()
	if err != nil {
		return err
	}
	bottom, err := rep.ratePlot()
	if err != nil {
		return err
	}
	img := vgimg.New(14*vg.Inch, 10*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 8,
		PadTop: vg.Millimeter * 4, PadBottom: vg.Millimeter * 4, PadLeft: vg.Millimeter * 4, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// shades are the fill periods' colours, by strategy family.
var shades = map[string]color.NRGBA{
	"baseline": {R: 200, G: 200, B: 200, A: 90},
	"sql":      {R: 230, G: 120, B: 80, A: 70},
	"ebb":      {R: 60, G: 140, B: 220, A: 80},
}

func family(name string) string {
	switch {
	case name == "baseline":
		return "baseline"
	case len(name) > 3 && name[:4] == "ebb-":
		return "ebb"
	}
	return "sql"
}

func (rep *report) latencyPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("live p95 per second, %d requests/s open loop, %d rows (%s)", rep.LiveRate, rep.Rows, rep.Machine)
	p.X.Label.Text = "seconds since the run started"
	p.Y.Label.Text = "p95 (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var pts plotter.XYs
	ymax := 1.0
	for _, s := range rep.Seconds {
		if s.Count == 0 || s.P95 <= 0 {
			continue
		}
		pts = append(pts, plotter.XY{X: s.At.Sub(rep.Started).Seconds(), Y: s.P95})
		ymax = math.Max(ymax, s.P95)
	}
	ymin := 0.1
	ytop := ymax * 3
	var labels plotter.XYLabels
	for _, r := range rep.Results {
		if !r.Live {
			continue
		}
		x0, x1 := r.Start.Sub(rep.Started).Seconds(), r.End.Sub(rep.Started).Seconds()
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: ymin}, {X: x1, Y: ymin}, {X: x1, Y: ytop}, {X: x0, Y: ytop}})
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		poly.Color = shades[family(r.Name)]
		poly.LineStyle.Width = 0
		p.Add(poly)
		labels.XYs = append(labels.XYs, plotter.XY{X: x0, Y: ytop / 1.6})
		labels.Labels = append(labels.Labels, r.Name)
	}
	if len(pts) > 0 {
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		line.Color = color.NRGBA{R: 20, G: 20, B: 20, A: 255}
		p.Add(line)
	}
	if len(labels.XYs) > 0 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].Rotation = math.Pi / 2
			l.TextStyle[i].Font.Size = vg.Points(8)
		}
		p.Add(l)
	}
	p.Y.Min, p.Y.Max = ymin, ytop
	return p, nil
}

func (rep *report) ratePlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "rows/s per strategy (ebb in blue; ceilings without live traffic at the right)"
	p.Y.Label.Text = "rows/s"
	var names []string
	var vals plotter.Values
	var colors []color.Color
	for _, r := range rep.Results {
		if r.Name == "baseline" {
			continue
		}
		names = append(names, r.Name)
		vals = append(vals, r.RowsPerSec)
		c := shades[family(r.Name)]
		c.A = 255
		colors = append(colors, c)
	}
	if len(vals) == 0 {
		return p, nil
	}
	for i := range vals {
		bar, err := plotter.NewBarChart(plotter.Values{vals[i]}, vg.Points(22))
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		bar.Color = colors[i]
		bar.LineStyle.Width = 0
		bar.XMin = float64(i)
		p.Add(bar)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = vg.Points(8)
	return p, nil
}
