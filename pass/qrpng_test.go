package pass

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// pixelMatrix reads a decoded QR image as dark (true) or light pixels.
func pixelMatrix(t testing.TB, pngBytes []byte) [][]bool {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatalf("standard library decode: %v", err)
	}
	b := img.Bounds()
	m := make([][]bool, b.Dy())
	for y := range m {
		m[y] = make([]bool, b.Dx())
		for x := range m[y] {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			m[y][x] = r+g+bl < 3*0x8000
		}
	}
	return m
}

// TestQRSameModulesAsGoQRCode compares every pixel of the PNG with the
// PNG go-qrcode draws itself from the same text at the same scale: only
// the encoding of the image changed, not one module.
func TestQRSameModulesAsGoQRCode(t *testing.T) {
	f := newFixture(t, AlgEdDSA, AlgES256)
	texts := []string{
		mustSign(t, f.signer, sampleClaims(Phone)),
		mustSign(t, f.signer, sampleClaims(Paper)),
		"A",
		strings.Repeat("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", 40), // version 28
		"lower case and 中文 in byte mode",
	}
	for _, text := range texts {
		for _, scale := range []int{1, 3, 7, 8} {
			got, version, err := QRPNG(text, scale)
			if err != nil {
				t.Fatal(err)
			}
			q, err := qrcode.New(text, qrcode.Medium)
			if err != nil {
				t.Fatal(err)
			}
			want, err := q.PNG(-scale)
			if err != nil {
				t.Fatal(err)
			}
			if version != q.VersionNumber {
				t.Fatalf("version %d, go-qrcode %d", version, q.VersionNumber)
			}
			g, w := pixelMatrix(t, got), pixelMatrix(t, want)
			if len(g) != len(w) || len(g[0]) != len(w[0]) {
				t.Fatalf("%.10q scale %d: %dx%d px, go-qrcode %dx%d", text, scale, len(g[0]), len(g), len(w[0]), len(w))
			}
			for y := range g {
				for x := range g[y] {
					if g[y][x] != w[y][x] {
						t.Fatalf("%.10q scale %d: pixel (%d,%d) differs from go-qrcode's", text, scale, x, y)
					}
				}
			}
		}
	}
}

// TestQRIndependentDecoder reads the PNG with zbar, a decoder that shares
// no code with the encoder, the PNG writer or gozxing.
func TestQRIndependentDecoder(t *testing.T) {
	if _, err := exec.LookPath("zbarimg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("zbarimg missing under CI: install zbar-tools (%v)", err)
		}
		t.Skip("zbarimg not installed (Debian zbar-tools): decoding with an independent decoder is skipped")
	}
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	c := sampleClaims(Phone)
	c.Name = MaskName(longName)
	dir := t.TempDir()
	for _, tc := range []struct {
		text  string
		scale int
	}{
		{mustSign(t, f.signer, c), 8}, // the desk's phone scale
		{mustSign(t, f.signer, sampleClaims(Paper)), 3},
		{mustSign(t, f.signer, sampleClaims(Phone)), 2},
	} {
		pngBytes, _, err := QRPNG(tc.text, tc.scale)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "qr.png")
		if err := os.WriteFile(file, pngBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("zbarimg", "-q", "--raw", file).Output()
		if err != nil {
			t.Fatalf("scale %d: zbarimg found no code: %v", tc.scale, err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != tc.text {
			t.Fatalf("scale %d: zbarimg read %.40q…, want %.40q…", tc.scale, got, tc.text)
		}
		if got, _ := decodeQR(t, pngBytes); got != tc.text {
			t.Fatalf("scale %d: gozxing read another text", tc.scale)
		}
	}
}

// TestQRHostileSizes: scales and matrices that would make an absurd or
// broken image are refused before any pixel is written.
func TestQRHostileSizes(t *testing.T) {
	for _, s := range []int{0, -1, -8, maxQRScale + 1, 1 << 20, -1 << 31} {
		if png, _, err := QRPNG("PASS", s); err == nil || png != nil {
			t.Errorf("scale %d accepted", s)
		}
	}
	if _, _, err := QRPNG(strings.Repeat("A", qrAlphanumericCapM[40]+1), 1); err == nil {
		t.Error("text beyond version 40 accepted")
	}
	big := make([][]bool, 185+1) // one module wider than version 40 with its quiet zone
	for i := range big {
		big[i] = make([]bool, len(big))
	}
	ragged := [][]bool{{true, false}, {true}}
	for name, tc := range map[string]struct {
		m     [][]bool
		scale int
	}{
		"empty":             {nil, 1},
		"ragged":            {ragged, 1},
		"beyond version 40": {big, maxQRScale},
		"scale 0":           {[][]bool{{true}}, 0},
	} {
		if _, err := bitmapPNG(tc.m, tc.scale); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The largest code at the largest scale is drawn.
	if _, _, err := QRPNG(strings.Repeat("A", qrAlphanumericCapM[40]), maxQRScale); err != nil {
		t.Fatalf("version 40 at scale %d: %v", maxQRScale, err)
	}
}

// FuzzQRPNG draws any text that fits and checks the image against the
// module matrix, pixel by pixel.
func FuzzQRPNG(f *testing.F) {
	f.Add("PASS", 2)
	f.Add("", 1)
	f.Add("中文", 5)
	f.Fuzz(func(t *testing.T, text string, scale int) {
		pngBytes, _, err := QRPNG(text, scale)
		if scale < 1 || scale > maxQRScale {
			if err == nil {
				t.Fatalf("scale %d accepted", scale)
			}
			return
		}
		q, qerr := qrcode.New(text, qrcode.Medium)
		if (err == nil) != (qerr == nil) {
			t.Fatalf("QRPNG error %v, go-qrcode %v", err, qerr)
		}
		if err != nil {
			return
		}
		bm := q.Bitmap()
		px := pixelMatrix(t, pngBytes)
		if len(px) != len(bm)*scale {
			t.Fatalf("%d px for %d modules at scale %d", len(px), len(bm), scale)
		}
		for y := range px {
			for x := range px[y] {
				if px[y][x] != bm[y/scale][x/scale] {
					t.Fatalf("pixel (%d,%d) not its module's colour", x, y)
				}
			}
		}
	})
}

var qrSink any

// phonePassText is a real signed phone pass with the longest masked name.
func phonePassText(b *testing.B) string {
	f := newFixture(b, AlgEdDSA, AlgEdDSA)
	c := sampleClaims(Phone)
	c.Name = MaskName(longName)
	return mustSign(b, f.signer, c)
}

// BenchmarkQRMatrix is what go-qrcode's module matrix costs alone: the
// floor for BenchmarkQRPNG in the same run.
func BenchmarkQRMatrix(b *testing.B) {
	text := phonePassText(b)
	b.ReportAllocs()
	for b.Loop() {
		q, err := qrcode.New(text, qrcode.Medium)
		if err != nil {
			b.Fatal(err)
		}
		qrSink = q.Bitmap()
	}
}

// BenchmarkQRPNG draws a phone pass at the paper scale and at the desk's
// phone scale.
func BenchmarkQRPNG(b *testing.B) {
	text := phonePassText(b)
	for _, scale := range []int{3, 8} {
		b.Run(fmt.Sprintf("scale=%d", scale), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				png, _, err := QRPNG(text, scale)
				if err != nil {
					b.Fatal(err)
				}
				qrSink = png
			}
		})
	}
}

// BenchmarkQRPNGGoQRCode is go-qrcode's own PNG of the same code at the
// paper scale, for comparison.
func BenchmarkQRPNGGoQRCode(b *testing.B) {
	text := phonePassText(b)
	b.ReportAllocs()
	for b.Loop() {
		q, err := qrcode.New(text, qrcode.Medium)
		if err != nil {
			b.Fatal(err)
		}
		png, err := q.PNG(-3)
		if err != nil {
			b.Fatal(err)
		}
		qrSink = png
	}
}
