package pass

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	qrcode "github.com/skip2/go-qrcode"
)

// qrAlphanumericCapM is the number of alphanumeric characters a QR code
// of each version (index) holds at error-correction level M (ISO/IEC
// 18004 table 7; a test checks it against the encoder).
var qrAlphanumericCapM = [41]int{0,
	20, 38, 61, 90, 122, 154, 178, 221, 262, 311,
	366, 419, 483, 528, 600, 656, 734, 816, 909, 970,
	1035, 1134, 1248, 1326, 1451, 1542, 1637, 1732, 1839, 1994,
	2113, 2238, 2369, 2506, 2632, 2780, 2894, 3054, 3220, 3391}

// qrVersionM returns the smallest QR version that holds n alphanumeric
// characters at level M, or 41 if none does.
func qrVersionM(n int) int {
	for v := 1; v <= 40; v++ {
		if qrAlphanumericCapM[v] >= n {
			return v
		}
	}
	return 41
}

// maxQRScale bounds the image size (a version-40 code at 32 pixels per
// module is about 5,900 pixels square).
const maxQRScale = 32

// QRPNG renders text as a QR code at error-correction level M, scale
// pixels per module (a whole number, so decoders see clean modules), with
// the standard quiet zone. It returns the PNG and the QR version used.
//
// The encoder picks the densest mode the text allows; a pass text is all
// QR alphanumeric characters, so it is encoded in alphanumeric mode
// (5.5 bits per character rather than 8).
//
// go-qrcode builds the module matrix; the PNG is written here, a 1-bit
// image with each module row packed once and repeated scale times, at the
// fastest deflate setting. go-qrcode's own PNG path draws one byte per
// pixel and deflates it at the best compression, which cost five times
// the matrix and made bulk printing a matter of drawing pictures.
func QRPNG(text string, scale int) (png []byte, version int, err error) {
	if scale < 1 || scale > maxQRScale {
		return nil, 0, fmt.Errorf("pass: QR scale %d outside 1..%d", scale, maxQRScale)
	}
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, 0, fmt.Errorf("pass: QR: %w", err)
	}
	png, err = bitmapPNG(q.Bitmap(), scale)
	if err != nil {
		return nil, 0, fmt.Errorf("pass: QR: %w", err)
	}
	return png, q.VersionNumber, nil
}

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// qrPalette is white (index 0, light modules) then black (index 1, dark
// modules), the order go-qrcode uses.
var qrPalette = []byte{0xff, 0xff, 0xff, 0, 0, 0}

// fastZlibWriters keeps deflate state between images: a new writer
// allocates several hundred kilobytes. Unlike the pass text's compressors
// these run at the fastest level: a QR image is mostly runs that any
// level compresses well.
var fastZlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // the level is valid
	return w
}}

// bitmapPNG writes a square module matrix (true is dark) as a 1-bit
// paletted PNG with scale×scale pixels per module.
func bitmapPNG(bitmap [][]bool, scale int) ([]byte, error) {
	n := len(bitmap)
	side := n * scale
	if n == 0 || scale < 1 || scale > maxQRScale || side > maxQRScale*(177+8) {
		return nil, fmt.Errorf("image of %d modules at scale %d refused", n, scale)
	}
	rowBytes := (side + 7) / 8
	row := make([]byte, 1+rowBytes) // filter type 0 (none), then pixels
	same := make([]byte, 1+rowBytes)
	same[0] = 2 // filter type 2 (Up), pixels equal to the row above

	var idat bytes.Buffer
	idat.Grow(side*rowBytes/8 + 256)
	zw := fastZlibWriters.Get().(*zlib.Writer)
	defer fastZlibWriters.Put(zw)
	zw.Reset(&idat)
	for y, line := range bitmap {
		if len(line) != n {
			return nil, fmt.Errorf("module row %d has %d modules, not %d", y, len(line), n)
		}
		clear(row[1:])
		for x, dark := range line {
			if !dark {
				continue
			}
			for px := x * scale; px < (x+1)*scale; px++ {
				row[1+px>>3] |= 0x80 >> (px & 7)
			}
		}
		if _, err := zw.Write(row); err != nil {
			return nil, fmt.Errorf("deflate image: %w", err)
		}
		// The module row's other pixel rows are the same: filtered "Up"
		// (the difference from the row above) they are all zero, which
		// deflate passes over in long matches.
		for range scale - 1 {
			if _, err := zw.Write(same); err != nil {
				return nil, fmt.Errorf("deflate image: %w", err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("deflate image: %w", err)
	}

	out := make([]byte, 0, len(pngSignature)+3*12+13+len(qrPalette)+idat.Len()+12)
	out = append(out, pngSignature...)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8], ihdr[9] = 1, 3 // bit depth 1, palette colour; deflate, no filter choice, no interlace
	out = appendPNGChunk(out, "IHDR", ihdr[:])
	out = appendPNGChunk(out, "PLTE", qrPalette)
	out = appendPNGChunk(out, "IDAT", idat.Bytes())
	out = appendPNGChunk(out, "IEND", nil)
	return out, nil
}

// appendPNGChunk appends one chunk: length, type, data, CRC of type and data.
func appendPNGChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}
