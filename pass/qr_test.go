package pass

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	qrcode "github.com/skip2/go-qrcode"
)

// longName is a long Uyghur name in Chinese transliteration (19
// characters); masked, it is the longest name a pass can carry.
const longName = "阿卜杜热合曼·买买提艾力江·吐尔逊托合提"

// qrAlphanumeric is the QR alphanumeric character set.
const qrAlphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func decodeQR(t *testing.T, pngBytes []byte) (string, image.Image) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText(), img
}

func TestQRPhonePass(t *testing.T) {
	for _, rootAlg := range []Alg{AlgEdDSA, AlgES256} {
		for _, issuerAlg := range []Alg{AlgEdDSA, AlgES256} {
			f := newFixture(t, rootAlg, issuerAlg)
			c := sampleClaims(Phone)
			c.Name = MaskName(longName)
			text := mustSign(t, f.signer, c)
			for _, r := range text {
				if !strings.ContainsRune(qrAlphanumeric, r) {
					t.Fatalf("text has %q, not QR alphanumeric", r)
				}
			}
			pngBytes, version, err := QRPNG(text, 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("phone pass, %v root, %v issuer, name %s: %d chars, QR version %d-M", rootAlg, issuerAlg, c.Name, len(text), version)
			if version > 15 {
				t.Errorf("QR version %d > 15", version)
			}
			// The version is the smallest that holds the text, which in
			// byte mode would need a larger one: the encoder used
			// alphanumeric mode.
			if _, err := qrcode.NewWithForcedVersion(text, version-1, qrcode.Medium); err == nil {
				t.Errorf("text fits version %d too", version-1)
			}
			got, _ := decodeQR(t, pngBytes)
			if got != text {
				t.Fatalf("QR decodes to a different text")
			}
			if _, err := f.verifier().Verify(got, testNow, 0); err != nil {
				t.Fatalf("scanned pass does not verify: %v", err)
			}
		}
	}
}

// TestQRWholeModules checks that every module is exactly scale×scale
// pixels with a 4-module quiet zone, and that each scale decodes.
func TestQRWholeModules(t *testing.T) {
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	text := mustSign(t, f.signer, sampleClaims(Phone))
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bitmap := q.Bitmap() // modules with the quiet zone
	for scale := 1; scale <= 8; scale++ {
		pngBytes, _, err := QRPNG(text, scale)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(pngBytes))
		if err != nil {
			t.Fatal(err)
		}
		if w := img.Bounds().Dx(); w != len(bitmap)*scale {
			t.Fatalf("scale %d: image is %d px for %d modules", scale, w, len(bitmap))
		}
		for y := 0; y < img.Bounds().Dy(); y++ {
			for x := 0; x < img.Bounds().Dx(); x++ {
				r, _, _, _ := img.At(x, y).RGBA()
				if dark := r < 0x8000; dark != bitmap[y/scale][x/scale] {
					t.Fatalf("scale %d: pixel (%d,%d) is not its module's colour", scale, x, y)
				}
			}
		}
		if scale >= 2 {
			if got, _ := decodeQR(t, pngBytes); got != text {
				t.Fatalf("scale %d: decodes to another text", scale)
			}
		}
	}
	for _, s := range []int{0, -1, maxQRScale + 1} {
		if _, _, err := QRPNG(text, s); err == nil {
			t.Errorf("scale %d accepted", s)
		}
	}
}

// TestQRCapacityTable checks qrAlphanumericCapM against the encoder.
func TestQRCapacityTable(t *testing.T) {
	for v := 1; v <= 40; v++ {
		n := qrAlphanumericCapM[v]
		if _, err := qrcode.NewWithForcedVersion(strings.Repeat("A", n), v, qrcode.Medium); err != nil {
			t.Errorf("version %d does not hold %d characters: %v", v, n, err)
		}
		if _, err := qrcode.NewWithForcedVersion(strings.Repeat("A", n+1), v, qrcode.Medium); err == nil {
			t.Errorf("version %d holds %d characters", v, n+1)
		}
		if qrVersionM(n) != v || qrVersionM(n+1) != v+1 {
			t.Errorf("qrVersionM around %d: %d, %d", n, qrVersionM(n), qrVersionM(n+1))
		}
	}
}
