package districtsync

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"passgate/pass"
)

// A bundle is the sync of one direction as a signed file, carried by hand
// (a USB stick) where there is no network. Layout, integers big-endian:
//
//	magic        8 bytes  "PGBUNDLE"
//	version      2 bytes  BundleVersion
//	header size  2 bytes  at most maxBundleHeader
//	header       JSON BundleHeader
//	payload size 4 bytes  at most MaxBundlePayload
//	payload      gzip'd JSON: UpPayload or DownPayload
//	signature    64 bytes over bundleSigContext || every byte above
//
// Nothing may follow the signature. The sizes come first so that a reader
// refuses an oversize part before reading it, and the payload is only
// decompressed once the signature verifies, so a forged file never gets
// as far as the decompressor.
const (
	bundleMagic = "PGBUNDLE"
	// BundleVersion is the only format version this program reads and
	// writes.
	BundleVersion = 1

	bundlePrefixLen = len(bundleMagic) + 2 + 2
	bundleSigLen    = 64 // Ed25519, or ES256 as r||s

	// maxBundleHeader bounds the JSON header: six short fields.
	maxBundleHeader = 1024
	// MaxBundlePayload bounds the compressed payload. A scan record
	// with pass, subject and key ids compresses to about 38 bytes (less
	// without), so this holds over 1.5 million.
	MaxBundlePayload = 64 << 20
	// MaxBundleSize bounds a whole bundle file.
	MaxBundleSize = bundlePrefixLen + maxBundleHeader + 4 + MaxBundlePayload + bundleSigLen
	// maxBundlePlain bounds the decompressed payload, like maxPlain on
	// the wire: a small file cannot expand into gigabytes.
	maxBundlePlain = maxPlain
)

// bundlePlainLimit is maxBundlePlain; tests lower it to build a bomb
// cheaply.
var bundlePlainLimit int64 = maxBundlePlain

// bundleSigContext is prepended to what a bundle signature covers. The
// district root also signs certificates (COSE Sig_structure, which starts
// with a CBOR array byte): the distinct prefix keeps a bundle signature
// from ever being valid as anything else, and the reverse.
const bundleSigContext = "passgate bundle signature v1\x00"

// Bundle directions.
const (
	DirectionUp   = "up"   // appliance → hub: its records
	DirectionDown = "down" // hub → appliance: trust, revocations, policy, marks
)

// Bundle errors, for errors.Is. Every refusal of a bundle wraps one of
// them with the detail.
var (
	// ErrBundleMalformed: not a passgate bundle, or damaged (truncated,
	// garbled, trailing bytes, bad fields).
	ErrBundleMalformed = errors.New("not a valid passgate bundle")
	// ErrBundleTruncated: the file ends early; it was not copied whole.
	ErrBundleTruncated = errors.New("the bundle is truncated (copy it again in full)")
	// ErrBundleVersion: written by a passgate with another format.
	ErrBundleVersion = errors.New("the bundle format version is not supported")
	// ErrBundleTooLarge: a part exceeds its limit.
	ErrBundleTooLarge = errors.New("the bundle is too large")
	// ErrBundleSignature: the signature does not verify: the file was
	// altered, or not made by who it claims.
	ErrBundleSignature = errors.New("the bundle signature does not verify (altered, or not from the claimed sender)")
	// ErrBundleUnverified: the payload was asked for before Verify.
	ErrBundleUnverified = errors.New("bundle payload read before its signature was verified")
)

// BundleHeader says what a bundle is, before its payload is read.
type BundleHeader struct {
	Version   int    `json:"-"`         // from the binary prefix
	Direction string `json:"direction"` // DirectionUp or DirectionDown
	District  string `json:"district"`  // district id
	Appliance string `json:"appliance"` // sender (up) or recipient (down)
	// Seq is the bundle's number for this appliance and direction,
	// strictly increasing: an importer refuses one at or below the last
	// it imported.
	Seq     int64 `json:"seq"`
	Created int64 `json:"created_ms"`
	// KID is the key that signed: the district root key (down) or the
	// appliance's bundle key (up).
	KID []byte `json:"kid"`
}

// check validates the header's fields.
func (h *BundleHeader) check() error {
	switch {
	case h.Direction != DirectionUp && h.Direction != DirectionDown:
		return fmt.Errorf("%w: direction %q", ErrBundleMalformed, h.Direction)
	case !validBundleName(h.District):
		return fmt.Errorf("%w: district %q", ErrBundleMalformed, h.District)
	case !validBundleName(h.Appliance):
		return fmt.Errorf("%w: appliance %q", ErrBundleMalformed, h.Appliance)
	case h.Seq < 1:
		return fmt.Errorf("%w: sequence number %d", ErrBundleMalformed, h.Seq)
	case h.Created <= 0:
		return fmt.Errorf("%w: creation time %d", ErrBundleMalformed, h.Created)
	case len(h.KID) != len(pass.KeyID{}):
		return fmt.Errorf("%w: key id of %d bytes", ErrBundleMalformed, len(h.KID))
	}
	return nil
}

// validBundleName accepts 1 to 64 bytes of UTF-8 without control
// characters: names that end up in messages printed to a terminal.
func validBundleName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// UpPayload is what an appliance sends the hub: every record after what
// the hub acknowledged, as the batches a push would carry (one epoch per
// batch), and where its feed stands, so the hub's answer bundle holds what
// it lacks.
type UpPayload struct {
	Now     int64         `json:"now_ms"`
	Backlog int64         `json:"backlog"` // records left for a later bundle
	Pushes  []PushRequest `json:"pushes"`
	Feed    PullRequest   `json:"feed"`
	// DownSeq is the last hub bundle imported at the appliance: the hub
	// numbers its next one after it even if the hub was restored from an
	// older backup.
	DownSeq int64 `json:"down_seq"`
	// Checkpoint is the appliance's signed checkpoint of its audit
	// trail as the bundle was made (no proof: the appliance does not
	// know what the hub holds; a rollback is still caught).
	Checkpoint *AuditCheckpoint `json:"checkpoint,omitempty"`
}

// DownPayload is what the hub sends an appliance: the feed increment and
// the hub's marks for the appliance's epochs, from which the appliance
// learns which of its records the hub holds.
type DownPayload struct {
	Now        int64        `json:"now_ms"`
	Feed       PullResponse `json:"feed"`
	ScanMarks  []Mark       `json:"scan_marks"`
	EventMarks []Mark       `json:"event_marks"`
	// UpSeq is the last appliance bundle the hub imported: the appliance
	// numbers its next one after it even if it was restored from an older
	// backup.
	UpSeq int64 `json:"up_seq"`
}

// BundleSigner signs bundles with a private key: the appliance's Ed25519
// bundle key, or the district root key (Ed25519 or P-256).
type BundleSigner struct {
	pub  *pass.PublicKey
	sign func(msg []byte) ([]byte, error)
}

// NewBundleSigner makes a signer from a private key.
func NewBundleSigner(k *pass.PrivateKey) (*BundleSigner, error) {
	if k == nil || k.Public() == nil {
		return nil, errors.New("bundle signer: no key")
	}
	// pass keeps its signing primitive private (it signs COSE only), so
	// the key is rebuilt here from its stored encoding: a tag byte and
	// the Ed25519 seed or P-256 scalar.
	enc, err := k.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("bundle signer: %w", err)
	}
	s := &BundleSigner{pub: k.Public()}
	switch {
	case k.Public().Alg == pass.AlgEdDSA && len(enc) == 33:
		priv := ed25519.NewKeyFromSeed(enc[1:])
		s.sign = func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil }
	case k.Public().Alg == pass.AlgES256 && len(enc) == 33:
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), enc[1:])
		if err != nil {
			return nil, fmt.Errorf("bundle signer: %w", err)
		}
		s.sign = func(msg []byte) ([]byte, error) {
			h := sha256.Sum256(msg)
			r, ss, err := ecdsa.Sign(rand.Reader, priv, h[:])
			if err != nil {
				return nil, err
			}
			sig := make([]byte, bundleSigLen)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
			return sig, nil
		}
	default:
		return nil, fmt.Errorf("bundle signer: unsupported key %v", k.Public().Alg)
	}
	return s, nil
}

// Public is the key that verifies this signer's bundles.
func (s *BundleSigner) Public() *pass.PublicKey { return s.pub }

// ParseBundleKey decodes an appliance's private bundle key as stored in
// sync_hub.bundle_key: the pass private key encoding (33 bytes), or an
// Ed25519 seed (32 bytes) or private key (64 bytes).
func ParseBundleKey(b []byte) (*pass.PrivateKey, error) {
	switch len(b) {
	case 33:
		return pass.ParsePrivateKey(b)
	case ed25519.SeedSize, ed25519.PrivateKeySize:
		return pass.ParsePrivateKey(append([]byte{0x01}, b[:ed25519.SeedSize]...))
	}
	return nil, fmt.Errorf("bundle key of %d bytes is not a known encoding", len(b))
}

// ParseBundlePublicKey decodes an appliance's public bundle key as the
// hub stores it (appliances.bundle_key): a raw Ed25519 key.
func ParseBundlePublicKey(raw []byte) (*pass.PublicKey, error) {
	return pass.ParsePublicKey(pass.AlgEdDSA, raw)
}

// EncodeBundle writes a signed bundle of payload (an *UpPayload or a
// *DownPayload, as h.Direction says) to w. h.Version and h.KID are set
// from the format and the signer.
func EncodeBundle(w io.Writer, h BundleHeader, payload any, s *BundleSigner) error {
	switch payload.(type) {
	case *UpPayload:
		if h.Direction != DirectionUp {
			return fmt.Errorf("encode bundle: up payload in a %q bundle", h.Direction)
		}
	case *DownPayload:
		if h.Direction != DirectionDown {
			return fmt.Errorf("encode bundle: down payload in a %q bundle", h.Direction)
		}
	default:
		return fmt.Errorf("encode bundle: payload of type %T", payload)
	}
	h.Version = BundleVersion
	h.KID = s.pub.KID[:]
	if err := h.check(); err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	head, err := json.Marshal(&h)
	if err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	if len(head) > maxBundleHeader {
		return fmt.Errorf("encode bundle: header of %d bytes", len(head))
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	cw := &countWriter{w: zw}
	if err := json.NewEncoder(cw).Encode(payload); err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	if cw.n > maxBundlePlain || z.Len() > MaxBundlePayload {
		return fmt.Errorf("encode bundle: %w: %d bytes (%d compressed)", ErrBundleTooLarge, cw.n, z.Len())
	}

	signed := make([]byte, 0, bundlePrefixLen+len(head)+4+z.Len())
	signed = append(signed, bundleMagic...)
	signed = binary.BigEndian.AppendUint16(signed, BundleVersion)
	signed = binary.BigEndian.AppendUint16(signed, uint16(len(head)))
	signed = append(signed, head...)
	signed = binary.BigEndian.AppendUint32(signed, uint32(z.Len()))
	signed = append(signed, z.Bytes()...)
	sig, err := s.sign(sigMessage(signed))
	if err != nil {
		return fmt.Errorf("encode bundle: sign: %w", err)
	}
	if len(sig) != bundleSigLen {
		return fmt.Errorf("encode bundle: signature of %d bytes", len(sig))
	}
	if _, err := w.Write(signed); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if _, err := w.Write(sig); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

// countWriter counts what goes through it: the plain payload size.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sigMessage is what a signature covers: the context string, then the
// bundle up to its signature.
func sigMessage(signed []byte) []byte {
	msg := make([]byte, 0, len(bundleSigContext)+len(signed))
	return append(append(msg, bundleSigContext...), signed...)
}

// Bundle is a bundle read from a file: its header, and its payload, which
// can be decoded only after Verify succeeded.
type Bundle struct {
	Header   BundleHeader
	signed   []byte // every byte the signature covers
	payload  []byte // the compressed payload, within signed
	sig      []byte
	verified bool
}

// ReadBundle reads and checks the structure of a bundle from r: magic,
// version, sizes, header fields, and that nothing follows the signature.
// It reads at most MaxBundleSize bytes (plus one, to see the end): an
// oversize part is refused from its declared size before it is read. It
// does not verify the signature: the caller picks the key from the header
// and calls Verify.
func ReadBundle(r io.Reader) (*Bundle, error) {
	b := &Bundle{}
	buf := make([]byte, bundlePrefixLen, bundlePrefixLen+maxBundleHeader+4)
	if n, err := io.ReadFull(r, buf); err != nil {
		// A short file is judged by what it has: a few bytes of
		// something else are not a truncated bundle.
		if !bytes.HasPrefix([]byte(bundleMagic), buf[:min(n, len(bundleMagic))]) {
			return nil, fmt.Errorf("%w: it does not start with %q", ErrBundleMalformed, bundleMagic)
		}
		return nil, readErr(err, "prefix")
	}
	if string(buf[:len(bundleMagic)]) != bundleMagic {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrBundleMalformed, bundleMagic)
	}
	b.Header.Version = int(binary.BigEndian.Uint16(buf[8:]))
	if b.Header.Version != BundleVersion {
		return nil, fmt.Errorf("%w: version %d, this passgate reads version %d", ErrBundleVersion, b.Header.Version, BundleVersion)
	}
	hlen := int(binary.BigEndian.Uint16(buf[10:]))
	if hlen == 0 || hlen > maxBundleHeader {
		return nil, fmt.Errorf("%w: header of %d bytes (at most %d)", ErrBundleMalformed, hlen, maxBundleHeader)
	}
	buf = buf[:bundlePrefixLen+hlen+4]
	if _, err := io.ReadFull(r, buf[bundlePrefixLen:]); err != nil {
		return nil, readErr(err, "header")
	}
	head := buf[bundlePrefixLen : bundlePrefixLen+hlen]
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBundleMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: header: data after the JSON object", ErrBundleMalformed)
	}
	b.Header.Version = BundleVersion
	if err := b.Header.check(); err != nil {
		return nil, err
	}
	plen := binary.BigEndian.Uint32(buf[bundlePrefixLen+hlen:])
	if plen == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrBundleMalformed)
	}
	if plen > MaxBundlePayload {
		return nil, fmt.Errorf("%w: payload of %d bytes (at most %d)", ErrBundleTooLarge, plen, MaxBundlePayload)
	}
	// Grown as it is read, not allocated from the declared size: a
	// short file claiming 64 MiB costs what it holds, not 64 MiB.
	var body bytes.Buffer
	body.Write(buf)
	if n, err := io.CopyN(&body, r, int64(plen)+bundleSigLen); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %d of %d bytes", ErrBundleTruncated, int64(len(buf))+n, int64(len(buf))+int64(plen)+bundleSigLen)
		}
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n != 0 {
		return nil, fmt.Errorf("%w: bytes after the signature", ErrBundleMalformed)
	}
	all := body.Bytes()
	b.signed = all[:len(all)-bundleSigLen]
	b.sig = all[len(all)-bundleSigLen:]
	b.payload = b.signed[len(buf):]
	return b, nil
}

// readErr turns a short read of part into ErrBundleTruncated.
func readErr(err error, part string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: it ends in the %s", ErrBundleTruncated, part)
	}
	return fmt.Errorf("read bundle %s: %w", part, err)
}

// Verify checks the signature with key, which must be the key the header
// names. Only then can the payload be read.
func (b *Bundle) Verify(key *pass.PublicKey) error {
	if key == nil || !bytes.Equal(key.KID[:], b.Header.KID) {
		return fmt.Errorf("%w: signed with key %x, which is not the expected key", ErrBundleSignature, b.Header.KID)
	}
	if !key.Verify(sigMessage(b.signed), b.sig) {
		return ErrBundleSignature
	}
	b.verified = true
	return nil
}

// Up decodes the payload of a verified up bundle.
func (b *Bundle) Up() (*UpPayload, error) {
	if b.Header.Direction != DirectionUp {
		return nil, fmt.Errorf("%w: a %q bundle, not an appliance's records", ErrBundleMalformed, b.Header.Direction)
	}
	var p UpPayload
	if err := b.decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Down decodes the payload of a verified down bundle.
func (b *Bundle) Down() (*DownPayload, error) {
	if b.Header.Direction != DirectionDown {
		return nil, fmt.Errorf("%w: a %q bundle, not the hub's answer", ErrBundleMalformed, b.Header.Direction)
	}
	var p DownPayload
	if err := b.decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// decode decompresses (bounded) and decodes the payload into v.
func (b *Bundle) decode(v any) error {
	if !b.verified {
		return ErrBundleUnverified
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.payload))
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrBundleMalformed, err)
	}
	lr := &io.LimitedReader{R: zr, N: bundlePlainLimit + 1}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("%w: payload over %d bytes decompressed", ErrBundleTooLarge, bundlePlainLimit)
		}
		return fmt.Errorf("%w: payload: %v", ErrBundleMalformed, err)
	}
	// The rest must be the encoder's newline and a clean gzip end.
	rest, err := io.ReadAll(io.MultiReader(dec.Buffered(), lr))
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrBundleMalformed, err)
	}
	if len(bytes.TrimSpace(rest)) > 0 || lr.N <= 0 {
		return fmt.Errorf("%w: payload: data after the JSON value", ErrBundleMalformed)
	}
	return nil
}
