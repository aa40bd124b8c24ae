package scanner

import (
	"errors"
	"fmt"
	"math"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Camera frames are 8-bit luma planes (grayscale, one byte per pixel, row
// after row), at the camera's own resolution: a pass held at arm's length
// covers a third of a 720p picture, and shrinking the frame first loses
// the module edges the decoder needs. The bounds keep one frame's memory
// (2 MB) and decoding time bounded on a two-core appliance.
const (
	// MaxFramePixels is the largest frame DecodeFrame accepts (1920×1080).
	MaxFramePixels = 1920 * 1080
	// MinFrameSide is the smallest width or height accepted: the
	// smallest QR code is 21 modules wide, one pixel each.
	MinFrameSide = 21
)

// ErrNoCode means the frame holds no QR code that could be read. For a
// camera it is the normal answer while nobody holds a pass up.
var ErrNoCode = errors.New("scanner: no QR code in the frame")

// FrameSizeError is a frame whose size is out of bounds or does not match
// its data. TooLarge tells a frame over MaxFramePixels from a malformed one.
type FrameSizeError struct {
	Width, Height, Len int
	TooLarge           bool
}

func (e *FrameSizeError) Error() string {
	if e.TooLarge {
		return fmt.Sprintf("scanner: frame %d×%d is larger than %d pixels", e.Width, e.Height, MaxFramePixels)
	}
	return fmt.Sprintf("scanner: frame %d×%d with %d bytes of luma is not a valid frame", e.Width, e.Height, e.Len)
}

// CheckFrameSize reports whether a frame of width×height pixels is within
// bounds, before any of it is read. The product is computed in 64 bits
// after both sides are known to be below MaxFramePixels, so it cannot
// overflow, not even where int is 32 bits.
func CheckFrameSize(width, height int) error {
	if width < MinFrameSide || height < MinFrameSide {
		return &FrameSizeError{Width: width, Height: height, Len: -1}
	}
	if width > MaxFramePixels || height > MaxFramePixels || int64(width)*int64(height) > MaxFramePixels {
		return &FrameSizeError{Width: width, Height: height, Len: -1, TooLarge: true}
	}
	return nil
}

// DecodeFrame reads a QR code from a luma plane of width×height pixels
// (len(luma) must be width*height) and returns its text. It answers
// ErrNoCode when there is none and a *FrameSizeError for a frame out of
// bounds. It is safe for concurrent use.
//
// Most frames hold no code, so the cheap tries come first and the dear
// ones run only where a finder pattern was seen:
//  1. a frame over 1 MP is first read at half size (box filtered), which
//     reads a large code in a fraction of the time and smooths noise;
//  2. the whole frame with the TRY_HARDER search, on the local (hybrid)
//     binarizer, then on a global threshold, which reads some codes the
//     local one misses (glare, low contrast);
//  3. if any try saw finder patterns but could not read the code, the
//     region around them is cut out, enlarged 2× and read again: gozxing
//     needs about 3 pixels a module, where a camera often gives 2.
//
// The worst case, a frame with finder-like patterns and no readable code,
// stays under ~70 ms for 720p on one core of the appliance (measured by
// TestDecodeFrame_CameraBench); a camera sends several frames a second,
// so a missed frame costs little.
func DecodeFrame(luma []byte, width, height int) (text string, err error) {
	if err := CheckFrameSize(width, height); err != nil {
		var fe *FrameSizeError
		errors.As(err, &fe)
		fe.Len = len(luma)
		return "", fe
	}
	if len(luma) != width*height {
		return "", &FrameSizeError{Width: width, Height: height, Len: len(luma)}
	}
	var seen finderBox
	if width*height > 1<<20 {
		half, hw, hh := halve(luma, width, height)
		if text, ok := decodePlane(half, hw, hh, false, seen.scaled(2)); ok {
			return text, nil
		}
	}
	if text, ok := decodePlane(luma, width, height, true, seen.scaled(1)); ok {
		return text, nil
	}
	if x0, y0, x1, y1, ok := seen.region(width, height); ok {
		crop, cw, ch := enlarge(luma, width, x0, y0, x1, y1)
		if text, ok := decodePlane(crop, cw, ch, true, nil); ok {
			return text, nil
		}
	}
	// gozxing's detector misreads some codes in one orientation (about 7
	// in 100 clean printed passes in testing) and reads them turned a
	// quarter; about 1 in 400 is misread turned a quarter too and reads
	// turned a half. Only worth its cost when finder patterns were seen.
	if seen.n > 0 {
		rot, rw, rh := luma, width, height
		for range 2 {
			rot, rw, rh = rotate90(rot, rw, rh)
			if text, ok := decodePlane(rot, rw, rh, true, nil); ok {
				return text, nil
			}
		}
	}
	return "", ErrNoCode
}

// rotate90 turns a luma plane a quarter clockwise.
func rotate90(luma []byte, width, height int) ([]byte, int, int) {
	out := make([]byte, len(luma))
	for y := range height {
		row := luma[y*width : (y+1)*width]
		for x, v := range row {
			out[x*height+(height-1-y)] = v
		}
	}
	return out, height, width
}

// decodePlane reads one plane with the local (hybrid) binarizer and,
// when hard, with the TRY_HARDER search on it and then on a global
// threshold. The fast search is skipped when the harder one follows:
// most frames hold no code, and on those it would only add its cost.
// Finder patterns the detector confirms go to seen.
func decodePlane(luma []byte, width, height int, hard bool, seen gozxing.ResultPointCallback) (text string, ok bool) {
	// gozxing is a port of a Java library and signals some impossible
	// states by panicking (index out of range). A camera frame is outside
	// input, so a panic is a try that read nothing; the next try (another
	// binarizer, the enlarged region, the turned frame) still runs.
	defer func() {
		if v := recover(); v != nil {
			text, ok = "", false
		}
	}()
	src := newLumaSource(luma, width, height)
	reader := qrcode.NewQRCodeReader()
	hints := map[gozxing.DecodeHintType]any{}
	if hard {
		hints[gozxing.DecodeHintType_TRY_HARDER] = true
	}
	if seen != nil {
		hints[gozxing.DecodeHintType_NEED_RESULT_POINT_CALLBACK] = seen
	}
	bins := []gozxing.Binarizer{gozxing.NewHybridBinarizer(src)}
	if hard {
		bins = append(bins, gozxing.NewGlobalHistgramBinarizer(src))
	}
	for _, bin := range bins {
		bmp, err := gozxing.NewBinaryBitmap(bin)
		if err != nil {
			continue
		}
		if res, err := reader.Decode(bmp, hints); err == nil {
			return res.GetText(), true
		}
	}
	return "", false
}

// finderBox collects where finder patterns were seen, in frame pixels.
type finderBox struct {
	n                      int
	minX, minY, maxX, maxY float64
	module                 float64 // largest module size estimate seen
}

// scaled returns a callback adding points seen in a plane k times smaller
// than the frame.
func (b *finderBox) scaled(k float64) gozxing.ResultPointCallback {
	return func(p gozxing.ResultPoint) {
		x, y := p.GetX()*k, p.GetY()*k
		if b.n == 0 {
			b.minX, b.maxX, b.minY, b.maxY = x, x, y, y
		}
		b.n++
		b.minX, b.maxX = min(b.minX, x), max(b.maxX, x)
		b.minY, b.maxY = min(b.minY, y), max(b.maxY, y)
		if fp, ok := p.(interface{ GetEstimatedModuleSize() float64 }); ok {
			b.module = max(b.module, fp.GetEstimatedModuleSize()*k)
		}
	}
}

// maxCropPixels bounds the enlarged region (before enlarging), so a
// frame full of finder-like texture costs at most one more 720p decode.
const maxCropPixels = 480 * 480

// region returns the part of the frame worth enlarging: the finder
// patterns' box grown by half its size on every side (a finder centre
// is 3.5 modules inside the code, and one of three may be missing), cut
// to the frame and to maxCropPixels around its centre.
func (b *finderBox) region(width, height int) (x0, y0, x1, y1 int, ok bool) {
	if b.n == 0 {
		return 0, 0, 0, 0, false
	}
	side := max(b.maxX-b.minX, b.maxY-b.minY, 30*b.module, 60)
	cx := min(max((b.minX+b.maxX)/2, 0), float64(width))
	cy := min(max((b.minY+b.maxY)/2, 0), float64(height))
	half := min(side, math.Sqrt(maxCropPixels)/2)
	x0, y0 = max(0, int(cx-half)), max(0, int(cy-half))
	x1, y1 = min(width, int(cx+half)), min(height, int(cy+half))
	return x0, y0, x1, y1, x1-x0 >= MinFrameSide && y1-y0 >= MinFrameSide
}

// halve returns the plane at half size, each pixel the mean of four.
func halve(luma []byte, width, height int) ([]byte, int, int) {
	hw, hh := width/2, height/2
	out := make([]byte, hw*hh)
	for y := range hh {
		r0, r1 := luma[2*y*width:], luma[(2*y+1)*width:]
		o := out[y*hw:]
		for x := range hw {
			o[x] = byte((int(r0[2*x]) + int(r0[2*x+1]) + int(r1[2*x]) + int(r1[2*x+1]) + 2) >> 2)
		}
	}
	return out, hw, hh
}

// enlarge cuts x0..x1 × y0..y1 out of the plane and doubles it with
// bilinear interpolation, which turns 2-pixel modules into 4-pixel ones
// with soft edges the binarizer can place.
func enlarge(luma []byte, width, x0, y0, x1, y1 int) ([]byte, int, int) {
	cw, ch := x1-x0, y1-y0
	ow, oh := 2*cw, 2*ch
	out := make([]byte, ow*oh)
	at := func(x, y int) int {
		x, y = min(max(x, 0), cw-1), min(max(y, 0), ch-1)
		return int(luma[(y0+y)*width+x0+x])
	}
	for y := range oh {
		// Sample centres: output pixel y covers input (y+0.5)/2-0.5.
		sy := y/2 - 1 + y%2
		wy := 3 - 2*(y%2) // weight of the lower row, in quarters: 3 or 1
		for x := range ow {
			sx := x/2 - 1 + x%2
			wx := 3 - 2*(x%2)
			v := (4-wx)*(4-wy)*at(sx, sy) + wx*(4-wy)*at(sx+1, sy) +
				(4-wx)*wy*at(sx, sy+1) + wx*wy*at(sx+1, sy+1)
			out[y*ow+x] = byte((v + 8) >> 4)
		}
	}
	return out, ow, oh
}

// lumaSource is a gozxing.LuminanceSource over a luma plane as it
// arrives: gozxing reads rows straight out of the slice, with no
// image.Image in between (reading pixels through image.Image's At costs
// twice the whole decode).
type lumaSource struct {
	gozxing.LuminanceSourceBase
	pix []byte
}

func newLumaSource(pix []byte, width, height int) *lumaSource {
	return &lumaSource{LuminanceSourceBase: gozxing.LuminanceSourceBase{Width: width, Height: height}, pix: pix}
}

// GetRow returns row y, in row when it is large enough.
func (s *lumaSource) GetRow(y int, row []byte) ([]byte, error) {
	if y < 0 || y >= s.Height {
		return nil, fmt.Errorf("scanner: row %d outside a frame of %d rows", y, s.Height)
	}
	if len(row) < s.Width {
		row = make([]byte, s.Width)
	}
	copy(row, s.pix[y*s.Width:(y+1)*s.Width])
	return row, nil
}

// GetMatrix returns the whole plane; gozxing only reads it.
func (s *lumaSource) GetMatrix() []byte { return s.pix }

// Invert returns the plane with black and white swapped.
func (s *lumaSource) Invert() gozxing.LuminanceSource { return gozxing.LuminanceSourceInvert(s) }

func (s *lumaSource) String() string { return gozxing.LuminanceSourceString(s) }
