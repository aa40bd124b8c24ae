package pass

import (
	"fmt"

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
func QRPNG(text string, scale int) (png []byte, version int, err error) {
	if scale < 1 || scale > maxQRScale {
		return nil, 0, fmt.Errorf("pass: QR scale %d outside 1..%d", scale, maxQRScale)
	}
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, 0, fmt.Errorf("pass: QR: %w", err)
	}
	// A negative size is a number of pixels per module in go-qrcode.
	png, err = q.PNG(-scale)
	if err != nil {
		return nil, 0, fmt.Errorf("pass: QR: %w", err)
	}
	return png, q.VersionNumber, nil
}
