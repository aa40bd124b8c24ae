package pass

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"strings"
	"sync"
)

// The text layer: "PG1:" + Base45(zlib(COSE_Sign1)).

// maxCompressed is the most bytes a text of MaxTextLen can carry.
const maxCompressed = (MaxTextLen-len(Prefix))/3*2 + 1

// decodeState holds the buffers one verification needs. States are pooled
// so that a verification allocates almost nothing, and above all so that
// the zlib reader (a few KB of tables) is reset rather than rebuilt: a new
// reader per pass costs 23 times more than the inflation itself.
type decodeState struct {
	raw      []byte        // Base45-decoded zlib stream
	br       bytes.Reader  // reads raw for zr
	zr       io.ReadCloser // zlib reader, nil until the first valid header
	inflated []byte        // MaxInflated+1 bytes: one more than allowed
	tbs      []byte        // Sig_structure being verified
}

var statePool = sync.Pool{New: func() any {
	return &decodeState{
		raw:      make([]byte, 0, maxCompressed),
		inflated: make([]byte, MaxInflated+1),
		tbs:      make([]byte, 0, 64+MaxInflated),
	}
}}

// unwrap takes a text to the COSE_Sign1 bytes it carries. The result
// aliases st and is valid until st is reused.
func (st *decodeState) unwrap(text string) ([]byte, error) {
	// The prefix is checked before the length so that any text that is not
	// a pass at all, however long, is classified as such.
	if !strings.HasPrefix(text, Prefix) {
		return nil, ErrNotAPass
	}
	if len(text) > MaxTextLen {
		return nil, malformed("text is %d bytes, limit %d", len(text), MaxTextLen)
	}
	raw, err := appendBase45Decode(st.raw[:0], text[len(Prefix):])
	st.raw = raw[:0]
	if err != nil {
		return nil, malformed("%v", err)
	}
	return st.inflate(raw)
}

// inflate decompresses a zlib stream through a limit. It reads at most
// MaxInflated+1 bytes: if the stream holds more, it is refused there and
// then, so a zlib bomb costs no more than a pass of the maximum size. The
// whole stream must be consumed and its Adler-32 checksum must match.
func (st *decodeState) inflate(z []byte) ([]byte, error) {
	// A preset dictionary (FDICT) is refused outright: passes have none,
	// and Go's reader would accept one whose id is that of the empty
	// dictionary.
	if len(z) >= 2 && z[1]&0x20 != 0 {
		return nil, malformed("zlib: preset dictionary")
	}
	st.br.Reset(z)
	if st.zr == nil {
		zr, err := zlib.NewReader(&st.br)
		if err != nil {
			return nil, malformed("zlib: %v", err)
		}
		st.zr = zr
	} else if err := st.zr.(zlib.Resetter).Reset(&st.br, nil); err != nil {
		return nil, malformed("zlib: %v", err)
	}
	buf := st.inflated
	n := 0
	for n < len(buf) {
		m, err := st.zr.Read(buf[n:])
		n += m
		if err == io.EOF {
			break // the checksum has been verified
		}
		if err != nil {
			return nil, malformed("zlib: %v", err)
		}
	}
	if n == len(buf) {
		return nil, malformed("zlib: inflates beyond %d bytes", MaxInflated)
	}
	if st.br.Len() != 0 {
		return nil, malformed("zlib: %d bytes after the end of the stream", st.br.Len())
	}
	return buf[:n], nil
}

// zlibWriters pools compressors: a zlib writer allocates hundreds of KB.
var zlibWriters = sync.Pool{New: func() any {
	w, err := zlib.NewWriterLevel(nil, zlib.BestCompression)
	if err != nil {
		panic(err)
	}
	return w
}}

// appendStoredZlib appends a zlib stream holding data in one stored
// (uncompressed) deflate block: header 78 01, block header 01 LEN NLEN
// (little-endian), the data, Adler-32 (big-endian). data must be at most
// 65,535 bytes.
func appendStoredZlib(dst, data []byte) []byte {
	n := len(data)
	dst = append(dst, 0x78, 0x01, 0x01, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	dst = append(dst, data...)
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(data))
}

// compress returns the zlib stream to carry cose.
//
// A signed pass hardly compresses (signatures, keys and hashes are
// random), yet inflating Huffman-coded deflate costs a checker about
// 5 µs against 0.6 µs for a stored block, a tenth of a whole check. So
// the stored form is used unless compression makes the QR code a version
// smaller, which for a phone pass matters more.
func compress(cose []byte) ([]byte, error) {
	var z bytes.Buffer
	z.Grow(len(cose) + 64)
	w := zlibWriters.Get().(*zlib.Writer)
	w.Reset(&z)
	_, err := w.Write(cose)
	if err == nil {
		err = w.Close()
	}
	zlibWriters.Put(w)
	if err != nil {
		return nil, err
	}
	stored := appendStoredZlib(make([]byte, 0, len(cose)+11), cose)
	textLen := func(z []byte) int { return len(Prefix) + base45EncodedLen(len(z)) }
	if qrVersionM(textLen(stored)) <= qrVersionM(textLen(z.Bytes())) {
		return stored, nil
	}
	return z.Bytes(), nil
}

// wrap encodes COSE_Sign1 bytes as a pass text.
func wrap(cose []byte) (string, error) {
	if len(cose) > MaxInflated {
		return "", errors.New("pass: encoded pass exceeds MaxInflated")
	}
	z, err := compress(cose)
	if err != nil {
		return "", err
	}
	if len(Prefix)+base45EncodedLen(len(z)) > MaxTextLen {
		return "", errors.New("pass: encoded pass exceeds MaxTextLen")
	}
	out := make([]byte, 0, len(Prefix)+base45EncodedLen(len(z)))
	out = append(out, Prefix...)
	out = appendBase45(out, z)
	return string(out), nil
}
