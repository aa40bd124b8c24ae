package scanner

import (
	"errors"
	"fmt"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Camera frames are 8-bit luma planes (grayscale, one byte per pixel, row
// after row). The bounds keep one frame's memory and decoding time small
// on a two-core appliance: a 720p frame is 0.9 MB and decodes in a few
// milliseconds, and nothing larger makes a pass easier to read.
const (
	// MaxFramePixels is the largest frame DecodeFrame accepts (1280×720).
	MaxFramePixels = 1280 * 720
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
// The fast detector runs first; only when it finds nothing does the
// slower TRY_HARDER search run, which finds small or tilted codes. A
// camera sends several frames a second, so a missed frame costs little.
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
	// gozxing is a port of a Java library and signals some impossible
	// states by panicking (index out of range); a camera frame is outside
	// input, so a panic there is a frame without a readable code.
	defer func() {
		if v := recover(); v != nil {
			text, err = "", ErrNoCode
		}
	}()
	// The fast local binarizer first; then the slower searches, and a
	// global threshold, which reads some codes the local one misses
	// (about 2 in 100 clean synthetic frames fail the first two).
	src := newLumaSource(luma, width, height)
	reader := qrcode.NewQRCodeReader()
	hard := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	for _, try := range []struct {
		bin   gozxing.Binarizer
		hints map[gozxing.DecodeHintType]any
	}{
		{gozxing.NewHybridBinarizer(src), nil},
		{gozxing.NewHybridBinarizer(src), hard},
		{gozxing.NewGlobalHistgramBinarizer(src), hard},
	} {
		bmp, err := gozxing.NewBinaryBitmap(try.bin)
		if err != nil {
			continue
		}
		if res, err := reader.Decode(bmp, try.hints); err == nil {
			return res.GetText(), nil
		}
	}
	return "", ErrNoCode
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
