// Command benchchart draws a PNG bar chart from Go benchmark output: one
// group of bars per benchmark (with the comparison key taken out of its
// name), one bar per value of that key, each the median of its samples.
//
//	benchchart -key impl -unit spans/s -title "..." -o docs/img/x.png results.txt...
//
// It draws with the standard library and x/image's fixed font only, so it
// runs anywhere Go does.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func main() {
	key := flag.String("key", "impl", "sub-benchmark key whose values are compared (name part key=value)")
	unit := flag.String("unit", "ns/op", "unit to plot, as it appears in the benchmark output")
	title := flag.String("title", "", "chart title")
	out := flag.String("o", "chart.png", "output PNG")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: benchchart [flags] results.txt...")
	}
	samples := map[string]map[string][]float64{} // group -> key value -> samples
	for _, path := range flag.Args() {
		if err := read(path, *key, *unit, samples); err != nil {
			log.Fatal(err)
		}
	}
	if len(samples) == 0 {
		log.Fatalf("no %q samples with a %s= part in %v", *unit, *key, flag.Args())
	}
	img := draw_(samples, *title, *unit)
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// read collects the samples of unit from one benchmark output file.
func read(path, key, unit string, samples map[string]map[string][]float64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		group, value, ok := splitName(fields[0], key)
		if !ok {
			continue
		}
		for i := 2; i+1 < len(fields); i += 2 {
			if fields[i+1] != unit {
				continue
			}
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
			}
			if samples[group] == nil {
				samples[group] = map[string][]float64{}
			}
			samples[group][value] = append(samples[group][value], v)
		}
	}
	return sc.Err()
}

// splitName takes "BenchmarkX/mode=serial/impl=a-2" apart into the group
// "X/mode=serial" and the value "a".
func splitName(name, key string) (group, value string, ok bool) {
	name = strings.TrimPrefix(name, "Benchmark")
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // the GOMAXPROCS suffix
		}
	}
	var rest []string
	for _, part := range strings.Split(name, "/") {
		if v, found := strings.CutPrefix(part, key+"="); found {
			value, ok = v, true
			continue
		}
		rest = append(rest, part)
	}
	return strings.Join(rest, "/"), value, ok
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xd6, 0x27, 0x28, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

// draw_ lays the groups out top to bottom, a horizontal bar per value,
// scaled to the largest median of the chart.
func draw_(samples map[string]map[string][]float64, title, unit string) *image.RGBA {
	const (
		width, left, right = 960, 260, 140
		bar, gap, top      = 22, 6, 50
	)
	groups := sortedKeys(samples)
	var values []string
	seen := map[string]bool{}
	maxV := 0.0
	for _, g := range groups {
		for _, v := range sortedKeys(samples[g]) {
			if !seen[v] {
				seen[v] = true
				values = append(values, v)
			}
			maxV = max(maxV, median(samples[g][v]))
		}
	}
	height := top + 30
	for _, g := range groups {
		height += len(samples[g])*(bar+gap) + 24
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, 10, 20, title+"  (median "+unit+")", color.Black)

	y := top
	for _, g := range groups {
		text(img, 10, y+14, g, color.Black)
		y += 20
		for _, v := range sortedKeys(samples[g]) {
			m := median(samples[g][v])
			c := palette[slices.Index(values, v)%len(palette)]
			w := int(float64(width-left-right) * m / maxV)
			draw.Draw(img, image.Rect(left, y, left+max(w, 1), y+bar), &image.Uniform{c}, image.Point{}, draw.Src)
			text(img, 20, y+15, v, color.Black)
			text(img, left+w+6, y+15, humanize(m), color.Black)
			y += bar + gap
		}
		y += 4
	}
	return img
}

func humanize(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	}
	return fmt.Sprintf("%.1f", v)
}

func text(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
