package pass

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// Shared fixtures and layer builders for the tests. The builders assemble
// each layer of a pass by hand so that a hostile case can damage exactly
// one layer and leave the others valid.

// streamReader is a deterministic byte stream: SHA-256 in counter mode
// over a label. It stands in for crypto/rand so keys are fixed.
type streamReader struct {
	label string
	ctr   uint64
	buf   []byte
}

func newStream(label string) io.Reader { return &streamReader{label: label} }

func (s *streamReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], s.ctr)
			s.ctr++
			sum := sha256.Sum256(append([]byte(s.label), c[:]...))
			s.buf = sum[:]
		}
		m := copy(p[n:], s.buf)
		s.buf = s.buf[m:]
		n += m
	}
	return n, nil
}

// testNow is the fixed time of the tests; certificates are valid from a
// day before to a year after.
var testNow = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, alg Alg, label string) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(alg, newStream(label))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, root *PrivateKey, issuer *PublicKey, district string, nb, na time.Time) []byte {
	t.Helper()
	c, err := IssueCert(root, Cert{Key: issuer, District: district, Appliance: "gate-east-01", NotBefore: nb, NotAfter: na})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const testDistrict = "310115"

// fixture is one root, one certified issuer and its signer.
type fixture struct {
	root, issuer *PrivateKey
	cert         []byte
	signer       *Signer
}

func newFixture(t testing.TB, rootAlg, issuerAlg Alg) *fixture {
	t.Helper()
	f := &fixture{
		root:   mustKey(t, rootAlg, "root "+rootAlg.String()),
		issuer: mustKey(t, issuerAlg, "issuer "+issuerAlg.String()),
	}
	f.cert = mustCert(t, f.root, f.issuer.Public(), testDistrict, testNow.Add(-24*time.Hour), testNow.Add(365*24*time.Hour))
	s, err := NewSigner(f.issuer, f.cert)
	if err != nil {
		t.Fatal(err)
	}
	f.signer = s
	return f
}

func (f *fixture) verifier() *Verifier { return NewVerifier([]Root{{testDistrict, f.root.Public()}}) }

func sampleClaims(kind Kind) Claims {
	c := Claims{
		District:  testDistrict,
		Subject:   Pseudonym([]byte("district pseudonym key"), "110101199003071234"),
		Name:      MaskName("张三丰"),
		IDTail:    IDTail("110101199003071234"),
		Color:     Green,
		TestedAt:  testNow.Add(-18 * time.Hour),
		Doses:     3,
		IssuedAt:  testNow.Add(-time.Hour),
		ExpiresAt: testNow.Add(-time.Hour + PhoneValidity),
		Kind:      kind,
	}
	for i := range c.ID {
		c.ID[i] = byte(0x10 + i)
	}
	if kind == Paper {
		c.ExpiresAt = c.IssuedAt.Add(PaperValidity)
	}
	return c
}

func mustSign(t testing.TB, s *Signer, c Claims) string {
	t.Helper()
	text, err := s.Sign(&c)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// --- layer builders ---

// textOf is the text layer over an arbitrary zlib stream.
func textOf(z []byte) string { return Prefix + string(appendBase45(nil, z)) }

// zlibOf compresses b.
func zlibOf(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// unwrapText reverses the text and zlib layers of a valid text.
func unwrapText(t testing.TB, text string) []byte {
	t.Helper()
	st := statePool.New().(*decodeState)
	b, err := st.unwrap(text)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

// cb is a tiny hand CBOR writer for hostile structures.
func cbHead(major byte, n uint64) []byte { return appendHead(nil, major, n) }
func cbBytes(b []byte) []byte            { return appendBytes(nil, b) }
func cbInt(v int64) []byte               { return appendInt(nil, v) }
func cbText(s string) []byte             { return append(cbHead(majorText, uint64(len(s))), s...) }
func cat(parts ...[]byte) []byte         { return bytes.Join(parts, nil) }

// coseRaw assembles tag 18 + [bstr protected, unprotected (raw CBOR), bstr
// payload, bstr sig].
func coseRaw(protected, unprotected, payload, sig []byte) []byte {
	return cat([]byte{tagSign1Byte, 0x84}, cbBytes(protected), unprotected, cbBytes(payload), cbBytes(sig))
}

// protectedRaw is the protected header map for key.
func protectedRaw(key *PublicKey) []byte {
	return cat([]byte{0xa2}, cbInt(headerAlg), cbInt(int64(key.Alg)), cbInt(headerKID), cbBytes(key.KID[:]))
}

// unprotectedWith is the unprotected header carrying cert.
func unprotectedWith(cert []byte) []byte {
	return cat([]byte{0xa1}, cbInt(labelPrivate), cbBytes(cert))
}

// signedCOSE signs payload with key under protected and assembles the
// COSE_Sign1 with the given unprotected header.
func signedCOSE(t testing.TB, key *PrivateKey, protected, unprotected, payload []byte) []byte {
	t.Helper()
	sig, err := key.sign(appendSigStructure(nil, protected, payload))
	if err != nil {
		t.Fatal(err)
	}
	return coseRaw(protected, unprotected, payload, sig)
}

// claimsMap encodes a claims set from generic maps, so tests can add,
// drop or mistype any key. The private map is under labelPrivate.
func claimsMap(t testing.TB, outer map[int]any) []byte {
	t.Helper()
	b, err := encMode.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleClaimsMaps is sampleClaims as generic maps.
func sampleClaimsMaps() (outer, private map[int]any) {
	c := sampleClaims(Phone)
	private = map[int]any{
		privSubject:  c.Subject[:],
		privName:     c.Name,
		privIDTail:   c.IDTail,
		privColor:    uint(c.Color),
		privTestedAt: uint64(c.TestedAt.Unix()),
		privDoses:    uint(c.Doses),
		privKind:     uint(c.Kind),
	}
	outer = map[int]any{
		claimIss:     c.District,
		claimExp:     uint64(c.ExpiresAt.Unix()),
		claimIat:     uint64(c.IssuedAt.Unix()),
		claimCti:     c.ID[:],
		labelPrivate: private,
	}
	return outer, private
}

// passFromPayload signs an arbitrary claims payload with the fixture's
// issuer and carries its certificate: a pass whose only fault, if any, is
// in the claims.
func (f *fixture) passFromPayload(t testing.TB, payload []byte) string {
	t.Helper()
	return textOf(zlibOf(signedCOSE(t, f.issuer, protectedRaw(f.issuer.Public()), unprotectedWith(f.cert), payload)))
}

// passWithCert is a valid pass from issuer carrying the given certificate.
func passWithCert(t testing.TB, issuer *PrivateKey, cert []byte) string {
	t.Helper()
	payload, err := encodeClaims(ptr(sampleClaims(Phone)))
	if err != nil {
		t.Fatal(err)
	}
	return textOf(zlibOf(signedCOSE(t, issuer, protectedRaw(issuer.Public()), unprotectedWith(cert), payload)))
}

func ptr[T any](v T) *T { return &v }

// rootsOf trusts the roots of fs, each for the test district.
func rootsOf(fs []*fixture) []Root {
	roots := make([]Root, len(fs))
	for i, f := range fs {
		roots[i] = Root{District: testDistrict, Key: f.root.Public()}
	}
	return roots
}
