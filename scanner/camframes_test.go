package scanner_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"passgate/internal/checktest"
	"passgate/pass"
	"passgate/scanner"
)

// A synthetic camera frame: a pass rendered with the appliance's own QR
// code (pass.QRPNG at one pixel per module), held up to a camera at some
// distance, angle and light. Every frame is made in the test from these
// numbers, so the set needs no binary files and any failure can be
// rebuilt from its name.
type camFrame struct {
	W, H   int     // the frame
	Side   float64 // the code's side in pixels, quiet zone excluded
	Rot    float64 // in-plane rotation, degrees
	Persp  float64 // perspective: the far edge is this much shorter (0..0.5)
	Yaw    float64 // direction of the far edge, degrees
	CX, CY float64 // centre of the code, as a fraction of the frame
	Blur   int     // box blur radius in pixels, applied twice
	Glare  float64 // peak of a bright spot over the code (0..1)
	Moire  float64 // amplitude of a screen pattern (0..1)
	Noise  float64 // sensor noise, standard deviation in grey levels
	Dim    bool    // low contrast: a phone screen at low brightness
	Seed   uint64
	Cat    string // category in the report
}

func (c camFrame) String() string {
	s := fmt.Sprintf("%s/%dx%d/side%.0f/rot%.0f", c.Cat, c.W, c.H, c.Side, c.Rot)
	if c.Persp > 0 {
		s += fmt.Sprintf("/persp%.2f@%.0f", c.Persp, c.Yaw)
	}
	if c.Blur > 0 {
		s += fmt.Sprintf("/blur%d", c.Blur)
	}
	if c.Glare > 0 {
		s += fmt.Sprintf("/glare%.1f", c.Glare)
	}
	if c.Moire > 0 {
		s += fmt.Sprintf("/moire%.2f", c.Moire)
	}
	if c.Noise > 0 {
		s += fmt.Sprintf("/noise%.0f", c.Noise)
	}
	if c.Dim {
		s += "/dim"
	}
	return s + fmt.Sprintf("/s%d", c.Seed)
}

// render draws the frame as an 8-bit luma plane. mods is the code at one
// pixel per module with its quiet zone of q modules on each side, n×n.
func (c camFrame) render(mods []byte, n, q int) []byte {
	rng := rand.New(rand.NewPCG(c.Seed, 99))
	out := make([]float64, c.W*c.H)
	// An uneven background: a desk or a sleeve, lit from one side.
	gx, gy := rng.Float64()*80-40, rng.Float64()*60-30
	for y := range c.H {
		for x := range c.W {
			out[y*c.W+x] = 110 + gx*float64(x)/float64(c.W) + gy*float64(y)/float64(c.H)
		}
	}
	src, dst := c.corners(n, q)
	c.drawCode(out, mods, n, src, dst)
	if c.Blur > 0 {
		boxBlur(out, c.W, c.H, c.Blur)
		boxBlur(out, c.W, c.H, c.Blur)
	}
	if c.Glare > 0 {
		c.addGlare(out, rng)
	}
	if c.Moire > 0 {
		c.addMoire(out, rng)
	}
	lum := make([]byte, len(out))
	for i, v := range out {
		if c.Noise > 0 {
			v += rng.NormFloat64() * c.Noise
		}
		lum[i] = byte(math.Round(min(255, max(0, v))))
	}
	return lum
}

// corners returns the corners of the code (n modules with its quiet zone
// of q) in module coordinates and where they fall in the frame: a square
// of the code's side plus its quiet zone, rotated, then the far edge
// pulled in.
func (c camFrame) corners(n, q int) (src, dst [4][2]float64) {
	sym := float64(n - 2*q)
	full := c.Side * float64(n) / sym
	cx, cy := c.CX*float64(c.W), c.CY*float64(c.H)
	src = [4][2]float64{{0, 0}, {float64(n), 0}, {float64(n), float64(n)}, {0, float64(n)}}
	yaw := c.Yaw * math.Pi / 180
	for i, p := range src {
		u, v := p[0]/float64(n)-0.5, p[1]/float64(n)-0.5
		// Perspective: shrink the side facing yaw, as if that edge were
		// farther from the lens.
		d := u*math.Cos(yaw) + v*math.Sin(yaw) // -0.7..0.7 along yaw
		k := 1 - c.Persp*(d+0.5)
		u, v = u*k, v*k
		a := c.Rot * math.Pi / 180
		ru, rv := u*math.Cos(a)-v*math.Sin(a), u*math.Sin(a)+v*math.Cos(a)
		dst[i] = [2]float64{cx + ru*full, cy + rv*full}
	}
	return src, dst
}

// drawCode paints the modules (n×n) into out where the corners dst put
// them.
func (c camFrame) drawCode(out []float64, mods []byte, n int, src, dst [4][2]float64) {
	hinv := homography(dst, src) // frame → module coordinates
	minX, minY, maxX, maxY := float64(c.W), float64(c.H), 0.0, 0.0
	for _, p := range dst {
		minX, maxX = min(minX, p[0]), max(maxX, p[0])
		minY, maxY = min(minY, p[1]), max(maxY, p[1])
	}
	paper, ink := 215.0, 35.0
	if c.Dim {
		paper, ink = 150, 95
	}
	// 3×3 samples per pixel: a lens and a sensor average the light over a
	// pixel, so module edges come out grey, not jagged.
	for y := max(0, int(minY)); y < min(c.H, int(maxY)+1); y++ {
		for x := max(0, int(minX)); x < min(c.W, int(maxX)+1); x++ {
			sum, hit := 0.0, 0
			for sy := range 3 {
				for sx := range 3 {
					fx, fy := float64(x)+(float64(sx)+0.5)/3, float64(y)+(float64(sy)+0.5)/3
					u, v := apply(hinv, fx, fy)
					if u < 0 || v < 0 || u >= float64(n) || v >= float64(n) {
						continue
					}
					hit++
					if mods[int(v)*n+int(u)] < 128 {
						sum += ink
					} else {
						sum += paper
					}
				}
			}
			if hit > 0 {
				i := y*c.W + x
				out[i] = (out[i]*float64(9-hit) + sum) / 9
			}
		}
	}
}

// addGlare adds a reflection of a ceiling light on a laminated card or a
// phone: a bright spot that washes the modules under it out.
func (c camFrame) addGlare(out []float64, rng *rand.Rand) {
	cx, cy := c.CX*float64(c.W), c.CY*float64(c.H)
	gx, gy := cx+(rng.Float64()-0.5)*c.Side*0.5, cy+(rng.Float64()-0.5)*c.Side*0.5
	r := c.Side * (0.15 + 0.1*rng.Float64())
	for y := range c.H {
		for x := range c.W {
			d2 := ((float64(x)-gx)*(float64(x)-gx) + (float64(y)-gy)*(float64(y)-gy)) / (r * r)
			if d2 < 9 {
				i := y*c.W + x
				out[i] += c.Glare * 255 * math.Exp(-d2)
			}
		}
	}
}

// addMoire films a phone screen with a camera: the screen's pixel grid
// beats against the sensor's into slanted bands.
func (c camFrame) addMoire(out []float64, rng *rand.Rand) {
	fx, fy := 0.21+0.05*rng.Float64(), 0.17+0.05*rng.Float64()
	for y := range c.H {
		for x := range c.W {
			i := y*c.W + x
			out[i] *= 1 + c.Moire*math.Sin(2*math.Pi*(fx*float64(x)+fy*float64(y)))*math.Sin(2*math.Pi*0.013*float64(x))
		}
	}
}

// homography returns the 3×3 matrix taking the four points from to the
// four points to (a direct linear solve with h33 = 1).
func homography(from, to [4][2]float64) [9]float64 {
	var a [8][9]float64
	for i := range 4 {
		x, y, u, v := from[i][0], from[i][1], to[i][0], to[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for col := range 8 {
		p := col
		for r := col + 1; r < 8; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		a[col], a[p] = a[p], a[col]
		for r := range 8 {
			if r != col {
				f := a[r][col] / a[col][col]
				for k := col; k < 9; k++ {
					a[r][k] -= f * a[col][k]
				}
			}
		}
	}
	var h [9]float64
	for i := range 8 {
		h[i] = a[i][8] / a[i][i]
	}
	h[8] = 1
	return h
}

func apply(h [9]float64, x, y float64) (float64, float64) {
	w := h[6]*x + h[7]*y + h[8]
	return (h[0]*x + h[1]*y + h[2]) / w, (h[3]*x + h[4]*y + h[5]) / w
}

func boxBlur(p []float64, w, h, r int) {
	tmp := make([]float64, len(p))
	for y := range h {
		for x := range w {
			s, n := 0.0, 0
			for k := max(0, x-r); k <= min(w-1, x+r); k++ {
				s += p[y*w+k]
				n++
			}
			tmp[y*w+x] = s / float64(n)
		}
	}
	for y := range h {
		for x := range w {
			s, n := 0.0, 0
			for k := max(0, y-r); k <= min(h-1, y+r); k++ {
				s += tmp[k*w+x]
				n++
			}
			p[y*w+x] = s / float64(n)
		}
	}
}

// camFrameSet is the measured set: each category varies one hardship
// over the frame sizes a tablet camera delivers, the others mild.
func camFrameSet() []camFrame {
	type res struct{ w, h int }
	sizes := []res{{640, 480}, {1280, 720}, {1920, 1080}}
	var set []camFrame
	seed := uint64(1)
	add := func(c camFrame) {
		c.Seed = seed
		seed++
		rng := rand.New(rand.NewPCG(c.Seed, 7))
		if c.CX == 0 {
			c.CX, c.CY = 0.4+0.2*rng.Float64(), 0.4+0.2*rng.Float64()
		}
		if c.Noise == 0 {
			c.Noise = 3
		}
		set = append(set, c)
	}
	// The code's side as a fraction of the frame's height: from a pass
	// held far away to one held close.
	fracs := []float64{0.18, 0.25, 0.35, 0.47, 0.6, 0.75}
	for _, r := range sizes {
		for _, f := range fracs {
			for _, rot := range []float64{0, 7} {
				add(camFrame{Cat: "size", W: r.w, H: r.h, Side: f * float64(r.h), Rot: rot})
			}
		}
		for _, rot := range []float64{10, 20, 25, 30, 35, 40, 45} {
			for _, f := range []float64{0.3, 0.47, 0.6} {
				add(camFrame{Cat: "tilt", W: r.w, H: r.h, Side: f * float64(r.h), Rot: rot})
			}
		}
		for _, p := range []float64{0.1, 0.2, 0.3, 0.4} {
			for _, yaw := range []float64{0, 90, 200} {
				add(camFrame{Cat: "perspective", W: r.w, H: r.h, Side: 0.47 * float64(r.h), Rot: 15, Persp: p, Yaw: yaw})
			}
		}
		for _, rot := range []float64{25, 35, 45} {
			for _, p := range []float64{0.15, 0.25} {
				add(camFrame{Cat: "tilt+persp", W: r.w, H: r.h, Side: 0.47 * float64(r.h), Rot: rot, Persp: p, Yaw: 60})
			}
		}
		for _, b := range []int{1, 2, 3} {
			for _, f := range []float64{0.35, 0.6} {
				add(camFrame{Cat: "blur", W: r.w, H: r.h, Side: f * float64(r.h), Rot: 12, Blur: b * r.h / 480})
			}
		}
		for _, g := range []float64{0.4, 0.7, 1.0} {
			for _, f := range []float64{0.35, 0.6} {
				add(camFrame{Cat: "glare", W: r.w, H: r.h, Side: f * float64(r.h), Rot: 8, Glare: g})
			}
		}
		for _, m := range []float64{0.1, 0.2, 0.3} {
			for _, f := range []float64{0.35, 0.6} {
				add(camFrame{Cat: "moire", W: r.w, H: r.h, Side: f * float64(r.h), Rot: 5, Moire: m})
			}
		}
		// No code at all, as most frames a camera sends: what a frame
		// costs when every try runs.
		for _, m := range []float64{0, 0.2} {
			add(camFrame{Cat: "none", W: r.w, H: r.h, Moire: m, Noise: 6})
		}
		for _, n := range []float64{8, 16, 24} {
			for _, dim := range []bool{false, true} {
				add(camFrame{Cat: "noise", W: r.w, H: r.h, Side: 0.4 * float64(r.h), Rot: 10, Noise: n, Dim: dim})
			}
		}
	}
	add(hardFrames()[0])
	return set
}

// hardFrames are the frames the default test run insists on: the ones a
// tablet at a gate sees and the old decoder (frames shrunk to 640×480,
// one rotation) never read.
func hardFrames() []camFrame {
	return []camFrame{
		{Cat: "hard", W: 1280, H: 720, Side: 340, Rot: 45, Persp: 0.2, Yaw: 60, CX: 0.55, CY: 0.5, Noise: 3, Seed: 1001},
		{Cat: "hard", W: 640, H: 480, Side: 250, Rot: 35, Persp: 0.15, Yaw: 30, CX: 0.5, CY: 0.5, Noise: 3, Seed: 1004},
	}
}

// zbarDecode runs zbarimg, an independent decoder, on a luma frame.
func zbarDecode(t testing.TB, dir string, luma []byte, w, h int) string {
	t.Helper()
	f := filepath.Join(dir, "frame.pgm")
	hdr := fmt.Sprintf("P5\n%d %d\n255\n", w, h)
	if err := os.WriteFile(f, append([]byte(hdr), luma...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "-q", "--raw", f).Output()
	if err != nil {
		return "" // exit status 4: nothing found
	}
	return strings.TrimRight(string(out), "\n")
}

// needZbar skips without zbarimg, except in CI, where it must be there.
func needZbar(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("zbarimg missing under CI: install zbar-tools (%v)", err)
		}
		t.Skip("zbarimg not installed (Debian zbar-tools): the comparison with an independent decoder is skipped")
	}
}

// fixedPass is a real signed phone pass that is the same on every run
// (Ed25519 keys from a fixed seed; Ed25519 signatures are deterministic),
// so every run measures the same QR code.
func fixedPass(t testing.TB) string {
	t.Helper()
	seed := rand.NewChaCha8([32]byte{'p', 'a', 's', 's', 'g', 'a', 't', 'e'})
	root, err := pass.GenerateKey(pass.AlgEdDSA, seed)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := pass.GenerateKey(pass.AlgEdDSA, seed)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	cert, err := pass.IssueCert(root, pass.Cert{Key: issuer.Public(), District: "610113", Appliance: "gate-1",
		NotBefore: at.AddDate(0, -1, 0), NotAfter: at.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pass.NewSigner(issuer, cert)
	if err != nil {
		t.Fatal(err)
	}
	c := pass.Claims{District: "610113", Name: "张*明", IDTail: "1234", Color: pass.Green,
		TestedAt: at.Add(-18 * time.Hour), Doses: 2, IssuedAt: at.Add(-time.Hour), ExpiresAt: at.Add(23 * time.Hour), Kind: pass.Phone}
	seed.Read(c.ID[:])
	seed.Read(c.Subject[:])
	return checktest.SignWith(t, s, c)
}

// codeModules returns text's QR code at one pixel per module, n×n with a
// quiet zone of q modules.
func codeModules(t testing.TB, text string) (mods []byte, n, q int) {
	t.Helper()
	luma, w, _ := passLuma(t, text, 1)
	// go-qrcode draws a quiet zone of 4 modules.
	return luma, w, 4
}

func TestDecodeFrame_HardCameraFrames(t *testing.T) {
	text := fixedPass(t)
	mods, n, q := codeModules(t, text)
	frames := hardFrames()
	lumas := make([][]byte, len(frames))
	for i, c := range frames {
		lumas[i] = c.render(mods, n, q)
		start := time.Now()
		got, err := scanner.DecodeFrame(lumas[i], c.W, c.H)
		if err != nil || got != text {
			t.Errorf("%v: %.30q, %v after %v; want the pass", c, got, err, time.Since(start))
		}
	}
	t.Run("zbar", func(t *testing.T) {
		needZbar(t)
		dir := t.TempDir()
		for i, c := range frames {
			// The frames are fair: an independent decoder reads them too.
			if got := zbarDecode(t, dir, lumas[i], c.W, c.H); got != text {
				t.Errorf("%v: zbar read %.30q; the frame is not a fair test", c, got)
			}
		}
	})
}

// TestDecodeFrame_CameraBench measures passgate's decoder against zbar
// on the whole synthetic set and prints a table. It takes minutes, so it
// runs only with PASSGATE_CAMERA_BENCH=1.
func TestDecodeFrame_CameraBench(t *testing.T) {
	if os.Getenv("PASSGATE_CAMERA_BENCH") != "1" {
		t.Skip("set PASSGATE_CAMERA_BENCH=1 to measure the decoder on the synthetic camera frames")
	}
	needZbar(t)
	text := fixedPass(t)
	mods, n, q := codeModules(t, text)
	dir := t.TempDir()
	type tally struct {
		n, ours, zbar, both int
		ms                  []float64
	}
	cats := map[string]*tally{}
	var order []string
	all := &tally{}
	for _, c := range camFrameSet() {
		luma := c.render(mods, n, q)
		start := time.Now()
		got, err := scanner.DecodeFrame(luma, c.W, c.H)
		ms := float64(time.Since(start).Microseconds()) / 1000
		ok := err == nil && got == text
		if err != nil && !errors.Is(err, scanner.ErrNoCode) {
			t.Fatalf("%v: %v", c, err)
		}
		zok := zbarDecode(t, dir, luma, c.W, c.H) == text
		key := c.Cat
		if _, seen := cats[key]; !seen {
			cats[key] = &tally{}
			order = append(order, key)
		}
		res := fmt.Sprintf("%dx%d", c.W, c.H)
		if _, seen := cats[res]; !seen {
			cats[res] = &tally{}
		}
		tallies := []*tally{cats[key], cats[res], all}
		if c.Side == 0 {
			tallies = tallies[:1] // frames without a code only show their cost
		}
		for _, tl := range tallies {
			tl.n++
			tl.ms = append(tl.ms, ms)
			if ok {
				tl.ours++
			}
			if zok {
				tl.zbar++
			}
			if ok && zok {
				tl.both++
			}
		}
		if testing.Verbose() && ok != zok {
			t.Logf("differ: %v passgate=%v zbar=%v (%.1f ms)", c, ok, zok, ms)
		}
	}
	order = append(order, "640x480", "1280x720", "1920x1080")
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-12s %6s %9s %6s %7s %8s %8s\n", "category", "frames", "passgate", "zbar", "ratio", "med ms", "p95 ms")
	row := func(name string, tl *tally) {
		slices.Sort(tl.ms)
		ratio := 0.0
		if tl.zbar > 0 {
			ratio = float64(tl.ours) / float64(tl.zbar)
		}
		fmt.Fprintf(&b, "%-12s %6d %9d %6d %6.0f%% %8.1f %8.1f\n", name, tl.n, tl.ours, tl.zbar, 100*ratio,
			tl.ms[len(tl.ms)/2], tl.ms[len(tl.ms)*95/100])
	}
	for _, k := range order {
		row(k, cats[k])
	}
	row("all", all)
	t.Log(b.String())
	if all.ours*10 < all.zbar*9 {
		t.Errorf("passgate read %d frames, zbar %d: below 90%% of zbar's rate", all.ours, all.zbar)
	}
}

// BenchmarkDecodeFrame_NoCode is the cost of most camera frames: nobody
// holds a pass up, and every try runs.
func BenchmarkDecodeFrame_NoCode(b *testing.B) {
	for _, r := range [][2]int{{640, 480}, {1280, 720}, {1920, 1080}} {
		c := camFrame{Cat: "none", W: r[0], H: r[1], Noise: 6, Seed: 5}
		luma := c.render(nil, 0, 0)
		b.Run(fmt.Sprintf("%dx%d", r[0], r[1]), func(b *testing.B) {
			for b.Loop() {
				if _, err := scanner.DecodeFrame(luma, c.W, c.H); !errors.Is(err, scanner.ErrNoCode) {
					b.Fatal(err)
				}
			}
		})
	}
}
