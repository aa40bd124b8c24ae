package pass

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func claimsEqual(a, b Claims) bool {
	return a.ID == b.ID && a.Subject == b.Subject && a.District == b.District &&
		a.Name == b.Name && a.IDTail == b.IDTail && a.Color == b.Color &&
		a.TestedAt.Equal(b.TestedAt) && a.TestedAt.IsZero() == b.TestedAt.IsZero() &&
		a.Doses == b.Doses && a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.Kind == b.Kind
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, rootAlg := range []Alg{AlgEdDSA, AlgES256} {
		for _, issuerAlg := range []Alg{AlgEdDSA, AlgES256} {
			f := newFixture(t, rootAlg, issuerAlg)
			for _, c := range []Claims{
				sampleClaims(Phone),
				sampleClaims(Paper),
				func() Claims {
					c := sampleClaims(Phone)
					c.TestedAt = time.Time{}
					c.Doses = 0
					c.Color = Red
					return c
				}(),
				func() Claims { c := sampleClaims(Phone); c.Name = ""; c.IDTail = ""; return c }(),
			} {
				name := rootAlg.String() + "-root/" + issuerAlg.String() + "-issuer/" + c.Kind.String()
				t.Run(name, func(t *testing.T) {
					text := mustSign(t, f.signer, c)
					if !strings.HasPrefix(text, Prefix) {
						t.Fatalf("text %q lacks prefix", text[:8])
					}
					// A verifier that has never seen the issuer: it trusts
					// only the root.
					p, err := f.verifier().Verify(text, testNow, 0)
					if err != nil {
						t.Fatal(err)
					}
					if !claimsEqual(p.Claims, c) {
						t.Errorf("claims differ:\n got  %+v\n want %+v", p.Claims, c)
					}
					if p.Alg != issuerAlg || p.KeyID != f.issuer.Public().KID {
						t.Errorf("alg/kid = %v/%v, want %v/%v", p.Alg, p.KeyID, issuerAlg, f.issuer.Public().KID)
					}
					if p.Issuer == nil || p.Issuer.RootKID != f.root.Public().KID || p.Issuer.District != testDistrict ||
						p.Issuer.Appliance != "gate-east-01" || !bytes.Equal(p.Issuer.Key.Raw, f.issuer.Public().Raw) {
						t.Errorf("issuer = %+v", p.Issuer)
					}
				})
			}
		}
	}
}

func TestSeveralRoots(t *testing.T) {
	t.Parallel()
	a := newFixture(t, AlgEdDSA, AlgEdDSA)
	b := newFixture(t, AlgES256, AlgES256)
	other := mustKey(t, AlgEdDSA, "unrelated root")
	v := NewVerifier([]Root{{testDistrict, other.Public()}, {testDistrict, a.root.Public()}, {}, {testDistrict, b.root.Public()}})
	for _, f := range []*fixture{a, b} {
		if _, err := v.Verify(mustSign(t, f.signer, sampleClaims(Phone)), testNow, 0); err != nil {
			t.Errorf("root %v: %v", f.root.Public().Alg, err)
		}
	}
	// Only a's root: b's pass is from an unknown issuer.
	if _, err := a.verifier().Verify(mustSign(t, b.signer, sampleClaims(Phone)), testNow, 0); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("pass from untrusted root: err = %v, want ErrUnknownIssuer", err)
	}
}

// flip flips one bit of b at i (a copy).
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// hostileCase is a damaged pass and the refusal it must meet.
type hostileCase struct {
	name string
	text string
	want error
	// detail must appear in the error: it shows that the case was
	// refused by the layer it was built to damage.
	detail string
}

// hostileParts is a good pass taken apart layer by layer, from which each
// case builds a damaged one.
type hostileParts struct {
	f, ecIssuer              *fixture
	good                     string
	cose, z                  []byte
	m, certM                 sign1
	iss                      *PublicKey
	prot, payload, unprot    []byte
	certSigAt, certPayloadAt int
}

func newHostileParts(t *testing.T) *hostileParts {
	t.Helper()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	h := &hostileParts{f: f, ecIssuer: newFixture(t, AlgEdDSA, AlgES256)}
	h.good = mustSign(t, f.signer, sampleClaims(Phone))
	h.cose = unwrapText(t, h.good)
	m, err := decodeSign1(h.cose, true)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	h.iss = f.issuer.Public()
	h.prot = protectedRaw(h.iss)
	h.payload = bytes.Clone(m.payload)
	h.unprot = unprotectedWith(f.cert)
	h.z = zlibOf(h.cose)
	h.certM, err = decodeSign1(f.cert, false)
	if err != nil {
		t.Fatal(err)
	}
	h.certSigAt = len(f.cert) - 1
	h.certPayloadAt = bytes.Index(f.cert, h.certM.payload) + 5
	return h
}

// sealed makes a pass from a damaged COSE_Sign1 (text and zlib valid).
func (h *hostileParts) sealed(b []byte) string { return textOf(zlibOf(b)) }

// signed makes a correctly signed pass from damaged parts.
func (h *hostileParts) signed(t *testing.T) func(protected, unprotected, payload []byte) string {
	return func(protected, unprotected, payload []byte) string {
		return h.sealed(signedCOSE(t, h.f.issuer, protected, unprotected, payload))
	}
}

// claims makes a correctly signed pass from claims that edit changed.
func (h *hostileParts) claims(t *testing.T) func(edit func(outer, private map[int]any)) string {
	return func(edit func(outer, private map[int]any)) string {
		outer, private := sampleClaimsMaps()
		edit(outer, private)
		return h.f.passFromPayload(t, claimsMap(t, outer))
	}
}

func hostileTextCases(t *testing.T, h *hostileParts) []hostileCase {
	good, z := h.good, h.z
	// Base45 of an odd number of bytes ends in a pair, of an even number
	// in a whole triplet.
	oddZ, evenZ := z, z[:len(z)&^1]
	if len(z)%2 == 0 {
		oddZ = z[:len(z)-1]
	}
	return []hostileCase{
		{"empty", "", ErrNotAPass, ""},
		{"whitespace", " \t\r\n", ErrNotAPass, ""},
		{"leading space", " " + good, ErrNotAPass, ""},
		{"HC1 prefix", "HC1:" + good[4:], ErrNotAPass, ""},
		{"lower-case prefix", "pg1:" + good[4:], ErrNotAPass, ""},
		{"prefix without colon", "PG1" + good[4:], ErrNotAPass, ""},
		{"1 MB without prefix", strings.Repeat("A", 1<<20), ErrNotAPass, ""},
		{"1 MB with prefix", Prefix + strings.Repeat("000", 1<<20/3), ErrMalformed, "limit"},
		{"one byte over MaxTextLen", Prefix + strings.Repeat("0", MaxTextLen-len(Prefix)+1), ErrMalformed, "limit"},
		{"invalid UTF-8", Prefix + "\xff\xfe\xfd", ErrMalformed, "base45: invalid character"},
		{"lower-case Base45", strings.ToLower(good[:4]) + good[4:], ErrNotAPass, ""},
		{"invalid Base45 char", good[:10] + "a" + good[11:], ErrMalformed, "base45: invalid character"},
		{"Base45 triplet over 65535", Prefix + ":::" + good[4:], ErrMalformed, "triplet"},
		{"Base45 pair over 255", textOf(oddZ)[:len(textOf(oddZ))-2] + "::", ErrMalformed, "pair"},
		{"Base45 dangling char", textOf(evenZ) + "0", ErrMalformed, "dangling"},
	}
}

func hostileZlibCases(t *testing.T, h *hostileParts) []hostileCase {
	cose, z := h.cose, h.z
	bomb := zlibOf(make([]byte, 2<<20)) // 2 MiB of zeros in ~2 KB
	if len(Prefix)+base45EncodedLen(len(bomb)) > MaxTextLen {
		t.Fatalf("bomb does not fit a text: %d bytes", len(bomb))
	}
	return []hostileCase{
		{"not zlib", textOf(cose), ErrMalformed, "invalid header"},
		{"truncated zlib", textOf(z[:len(z)-6]), ErrMalformed, "unexpected EOF"},
		{"bad zlib checksum", textOf(flip(z, len(z)-1)), ErrMalformed, "checksum"},
		{"zlib bomb", textOf(bomb), ErrMalformed, "beyond"},
		{"bytes after zlib stream", textOf(append(bytes.Clone(z), 0)), ErrMalformed, "after the end"},
		{"zlib preset dictionary", textOf(append([]byte{0x78, 0xbb, 0, 0, 0, 1}, z[2:]...)), ErrMalformed, "dictionary"},
	}
}

func hostileCOSECases(t *testing.T, h *hostileParts) []hostileCase {
	f, m, iss, cose := h.f, h.m, h.iss, h.cose
	prot, unprot, payload := h.prot, h.unprot, h.payload
	sealed, signed := h.sealed, h.signed(t)
	nested := cat(bytes.Repeat([]byte{0x81}, 10), []byte{0x00})
	return []hostileCase{
		{"invalid CBOR", sealed([]byte{0xd2, 0xff, 0xff}), ErrMalformed, "COSE"},
		{"empty COSE", sealed(nil), ErrMalformed, "COSE: empty"},
		{"deeply nested CBOR", sealed(coseRaw(prot, cat([]byte{0xa1}, cbInt(labelPrivate), nested), payload, m.sig)), ErrMalformed, "nested"},
		{"indefinite-length array", sealed(cat([]byte{0xd2, 0x9f}, cose[2:], []byte{0xff})), ErrMalformed, "indefinite"},
		{"indefinite-length payload", sealed(cat(cose[:1+1+len(cbBytes(prot))+len(unprot)], []byte{0x5f}, cbBytes(payload), []byte{0xff}, cbBytes(m.sig))), ErrMalformed, "indefinite"},
		{"duplicate unprotected label", sealed(coseRaw(prot, cat([]byte{0xa2}, cbInt(labelPrivate), cbBytes(f.cert), cbInt(labelPrivate), cbBytes(f.cert)), payload, m.sig)), ErrMalformed, "unprotected header: duplicate"},
		{"duplicate protected label", signed(cat([]byte{0xa3}, prot[1:], cbInt(headerAlg), cbInt(int64(AlgEdDSA))), unprot, payload), ErrMalformed, "protected header: duplicate"},
		{"unknown unprotected label", sealed(coseRaw(prot, cat([]byte{0xa2}, cbInt(labelPrivate), cbBytes(f.cert), cbInt(33), cbBytes(nil)), payload, m.sig)), ErrMalformed, "unknown label 33"},
		{"unknown protected label", signed(cat([]byte{0xa3}, prot[1:], cbInt(3), cbInt(0)), unprot, payload), ErrMalformed, "unknown label 3"},
		{"wrong tag (COSE_Mac0)", sealed(append([]byte{0xd1}, cose[1:]...)), ErrMalformed, "want tag 18"},
		{"long-form tag 18", sealed(append([]byte{0xd8, 0x12}, cose[1:]...)), ErrMalformed, "want tag 18"},
		{"no tag", sealed(cose[1:]), ErrMalformed, "not tagged"},
		{"array of 3", sealed(cat([]byte{0xd2, 0x83}, cbBytes(prot), unprot, cbBytes(payload))), ErrMalformed, "3 elements"},
		{"array of 5", sealed(cat([]byte{0xd2, 0x85}, cose[2:], []byte{0x40})), ErrMalformed, "5 elements"},
		{"trailing bytes after COSE", sealed(append(bytes.Clone(cose), 0x00)), ErrMalformed, "extraneous"},
		{"payload is null (detached)", sealed(cat([]byte{0xd2, 0x84}, cbBytes(prot), unprot, []byte{0xf6}, cbBytes(m.sig))), ErrMalformed, "COSE payload"},
		{"kid of 7 bytes", signed(cat([]byte{0xa2}, cbInt(headerAlg), cbInt(int64(AlgEdDSA)), cbInt(headerKID), cbBytes(iss.KID[:7])), unprot, payload), ErrMalformed, "kid is 7 bytes"},
		{"no kid", signed(cat([]byte{0xa1}, cbInt(headerAlg), cbInt(int64(AlgEdDSA))), unprot, payload), ErrMalformed, "no kid"},
		{"missing alg", signed(cat([]byte{0xa1}, cbInt(headerKID), cbBytes(iss.KID[:])), unprot, payload), ErrUnsupportedAlg, "no alg"},
		{"empty protected header", signed(nil, unprot, payload), ErrUnsupportedAlg, "no alg"},
		{"unsupported alg -257", signed(cat([]byte{0xa2}, cbInt(headerAlg), cbInt(-257), cbInt(headerKID), cbBytes(iss.KID[:])), unprot, payload), ErrUnsupportedAlg, "-257"},
		{"text alg", signed(cat([]byte{0xa2}, cbInt(headerAlg), cbText("EdDSA"), cbInt(headerKID), cbBytes(iss.KID[:])), unprot, payload), ErrUnsupportedAlg, "text"},
	}
}

func hostileSignatureCases(t *testing.T, h *hostileParts) []hostileCase {
	f, m, iss := h.f, h.m, h.iss
	prot, unprot, payload := h.prot, h.unprot, h.payload
	sealed, signed := h.sealed, h.signed(t)
	certSigAt, certPayloadAt := h.certSigAt, h.certPayloadAt
	return []hostileCase{
		{"flipped bit in payload", sealed(coseRaw(prot, unprot, flip(payload, 20), m.sig)), ErrBadSignature, "pass signature"},
		{"flipped bit in signature", sealed(coseRaw(prot, unprot, payload, flip(m.sig, 7))), ErrBadSignature, "pass signature"},
		{"flipped bit in protected header", sealed(coseRaw(flip(prot, len(prot)-1), unprot, payload, m.sig)), ErrUnknownIssuer, "kid"}, // the kid changed
		{"short signature", sealed(coseRaw(prot, unprot, payload, m.sig[:63])), ErrBadSignature, "pass signature"},
		{"alg does not match key", signed(cat([]byte{0xa2}, cbInt(headerAlg), cbInt(int64(AlgES256)), cbInt(headerKID), cbBytes(iss.KID[:])), unprot, payload), ErrBadSignature, "does not match"},
		{"flipped bit in cert signature", passWithCert(t, f.issuer, flip(f.cert, certSigAt)), ErrBadSignature, "root signature"},
		{"flipped bit in cert payload", passWithCert(t, f.issuer, flip(f.cert, certPayloadAt)), ErrBadSignature, "root signature"},
	}
}

func hostileCertCases(t *testing.T, h *hostileParts) []hostileCase {
	f, ecIssuer, iss, certM := h.f, h.ecIssuer, h.iss, h.certM
	prot, payload := h.prot, h.payload
	signed := h.signed(t)
	otherRoot := mustKey(t, AlgEdDSA, "other root")
	day := 24 * time.Hour
	return []hostileCase{
		{"cert from another root", passWithCert(t, f.issuer, mustCert(t, otherRoot, iss, testDistrict, testNow.Add(-day), testNow.Add(day))), ErrUnknownIssuer, "not trusted"},
		{"missing cert", signed(prot, []byte{0xa0}, payload), ErrUnknownIssuer, "no certificate"},
		{"kid mismatch", passWithCert(t, f.issuer, ecIssuer.cert), ErrUnknownIssuer, "not the certified key"},
		{"expired issuer cert", passWithCert(t, f.issuer, mustCert(t, f.root, iss, testDistrict, testNow.Add(-30*day), testNow.Add(-day))), ErrIssuerExpired, "expired at"},
		{"not-yet-valid issuer cert", passWithCert(t, f.issuer, mustCert(t, f.root, iss, testDistrict, testNow.Add(day), testNow.Add(30*day))), ErrIssuerExpired, "not valid before"},
		{"cert for another district", passWithCert(t, f.issuer, mustCert(t, f.root, iss, "110105", testNow.Add(-day), testNow.Add(day))), ErrUnknownIssuer, "its root"},
		{"cert is not tagged", passWithCert(t, f.issuer, f.cert[1:]), ErrMalformed, "certificate: malformed pass: COSE: not tagged"},
		{"cert with nested cert", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), unprotectedWith(f.cert), certM.payload)), ErrMalformed, "certificate: malformed pass: COSE unprotected header: unknown label -65537"},
		{"cert certifies bad P-256 point", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
			certDistrict: testDistrict, certAppliance: "x", certAlg: int(AlgES256), certKey: append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 32)...),
			certNotBefore: uint64(testNow.Add(-day).Unix()), certNotAfter: uint64(testNow.Add(day).Unix()),
		}))), ErrMalformed, "not a point on the curve"},
		{"cert certifies the Ed25519 identity", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
			certDistrict: testDistrict, certAppliance: "a1", certAlg: int(AlgEdDSA), certKey: append([]byte{1}, make([]byte, 31)...),
			certNotBefore: uint64(testNow.Add(-day).Unix()), certNotAfter: uint64(testNow.Add(day).Unix()),
		}))), ErrMalformed, "small order"},
		{"cert district not an identifier", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
			certDistrict: "浦东新区", certAppliance: "a1", certAlg: int(AlgEdDSA), certKey: iss.Raw,
			certNotBefore: uint64(testNow.Add(-day).Unix()), certNotAfter: uint64(testNow.Add(day).Unix()),
		}))), ErrMalformed, "identifier"},
		{"cert district of 17 bytes", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
			certDistrict: strings.Repeat("d", 17), certAppliance: "a1", certAlg: int(AlgEdDSA), certKey: iss.Raw,
			certNotBefore: uint64(testNow.Add(-day).Unix()), certNotAfter: uint64(testNow.Add(day).Unix()),
		}))), ErrMalformed, "1 to 16 bytes"},
		{"cert appliance with bidi override", passWithCert(t, f.issuer, signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
			certDistrict: testDistrict, certAppliance: "东门\u202e机闸", certAlg: int(AlgEdDSA), certKey: iss.Raw,
			certNotBefore: uint64(testNow.Add(-day).Unix()), certNotAfter: uint64(testNow.Add(day).Unix()),
		}))), ErrMalformed, "U+202E"},
	}
}

func hostileClaimsCases(t *testing.T, h *hostileParts) []hostileCase {
	f, payload := h.f, h.payload
	claims := h.claims(t)
	return []hostileCase{
		{"unknown claim key", claims(func(o, p map[int]any) { o[2] = "subject" }), ErrMalformed, "unknown claim 2"},
		{"unknown private claim key", claims(func(o, p map[int]any) { p[8] = uint(1) }), ErrMalformed, "unknown private claim 8"},
		{"missing claim exp", claims(func(o, p map[int]any) { delete(o, claimExp) }), ErrMalformed, "missing claim"},
		{"missing private claim doses", claims(func(o, p map[int]any) { delete(p, privDoses) }), ErrMalformed, "missing private claim"},
		{"missing private claims", claims(func(o, p map[int]any) { delete(o, labelPrivate) }), ErrMalformed, "missing claim"},
		{"colour 9", claims(func(o, p map[int]any) { p[privColor] = uint(9) }), ErrMalformed, "invalid colour 9"},
		{"colour 0", claims(func(o, p map[int]any) { p[privColor] = uint(0) }), ErrMalformed, "invalid colour 0"},
		{"kind 3", claims(func(o, p map[int]any) { p[privKind] = uint(3) }), ErrMalformed, "invalid kind 3"},
		{"doses 256", claims(func(o, p map[int]any) { p[privDoses] = uint(256) }), ErrMalformed, "doses 256"},
		{"doses null", claims(func(o, p map[int]any) { p[privDoses] = nil }), ErrMalformed, "private claim 6: CBOR simple"},
		{"doses negative", claims(func(o, p map[int]any) { p[privDoses] = -1 }), ErrMalformed, "private claim 6: CBOR negative"},
		{"doses as float", claims(func(o, p map[int]any) { p[privDoses] = 2.0 }), ErrMalformed, "private claim 6: CBOR simple"},
		{"name as bytes", claims(func(o, p map[int]any) { p[privName] = []byte("张*丰") }), ErrMalformed, "private claim 2: CBOR byte string"},
		{"name too long", claims(func(o, p map[int]any) { p[privName] = strings.Repeat("张", 22) }), ErrMalformed, "name is 66 bytes"},
		{"name with bidi override", claims(func(o, p map[int]any) { p[privName] = "张\u202e丰" }), ErrMalformed, "U+202E"},
		{"ID tail too long", claims(func(o, p map[int]any) { p[privIDTail] = "123456789" }), ErrMalformed, "ID tail is 9 bytes"},
		{"subject of 15 bytes", claims(func(o, p map[int]any) { p[privSubject] = make([]byte, 15) }), ErrMalformed, "subject is 15 bytes"},
		{"zero subject", claims(func(o, p map[int]any) { p[privSubject] = make([]byte, 16) }), ErrMalformed, "subject is zero"},
		{"cti of 16 bytes", claims(func(o, p map[int]any) { o[claimCti] = make([]byte, 16) }), ErrMalformed, "cti is 16 bytes"},
		{"tested-at present as 0", claims(func(o, p map[int]any) { p[privTestedAt] = uint(0) }), ErrMalformed, "tested-at 0"},
		{"exp before iat", claims(func(o, p map[int]any) { o[claimExp] = o[claimIat].(uint64) - 1 }), ErrMalformed, "not before expires-at"},
		{"exp beyond year 9999", claims(func(o, p map[int]any) { o[claimExp] = uint64(1) << 40 }), ErrMalformed, "exp 1099511627776"},
		{"iss as int", claims(func(o, p map[int]any) { o[claimIss] = 310115 }), ErrMalformed, "claim 1: CBOR unsigned integer"},
		{"iss differs from cert", claims(func(o, p map[int]any) { o[claimIss] = "110105" }), ErrUnknownIssuer, "certified for"},
		{"text map key", f.passFromPayload(t, cat(payload[:1], cbText("1"), payload[2:])), ErrMalformed, "claims: key: CBOR text string"},
		{"empty claims", f.passFromPayload(t, nil), ErrMalformed, "claims: EOF"},
		{"claims not a map", f.passFromPayload(t, cbInt(1)), ErrMalformed, "where map expected"},
		{"duplicate claim key", f.passFromPayload(t, cat([]byte{0xa6}, payload[1:], cbInt(claimIss), cbText(testDistrict))), ErrMalformed, "claim 1: duplicate"},
		{"tag in claims (bignum exp)", f.passFromPayload(t, bytes.Replace(payload, cat(cbInt(claimExp), appendHead(nil, majorUint, uint64(sampleClaims(Phone).ExpiresAt.Unix()))), cat(cbInt(claimExp), []byte{0xc2}, cbBytes([]byte{0x01, 0x02})), 1)), ErrMalformed, "tag"},
		{"trailing bytes after claims", f.passFromPayload(t, append(bytes.Clone(payload), 0x00)), ErrMalformed, "claims: cbor: 1 bytes of extraneous"},
	}
}

func TestHostile(t *testing.T) {
	t.Parallel()
	h := newHostileParts(t)
	f, good := h.f, h.good
	var cases []hostileCase
	for _, layer := range []func(*testing.T, *hostileParts) []hostileCase{
		hostileTextCases, hostileZlibCases, hostileCOSECases,
		hostileSignatureCases, hostileCertCases, hostileClaimsCases,
	} {
		cases = append(cases, layer(t, h)...)
	}

	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.verifier().Verify(tc.text, testNow, time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("err = %v, want detail %q", err, tc.detail)
			}
			if p != nil {
				t.Fatalf("returned a pass with error %v", err)
			}
		})
	}
	// The good pass itself verifies, so every failure above comes from
	// the damage.
	if _, err := f.verifier().Verify(good, testNow, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// TestZlibBomb inflates 10 MiB of compressed zeros through the limit: it
// must be refused having read only the start of the stream.
func TestZlibBomb(t *testing.T) {
	bomb := zlibOf(make([]byte, 10<<20))
	st := statePool.New().(*decodeState)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := st.inflate(bomb)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if st.br.Len() < len(bomb)/2 {
		t.Errorf("inflate consumed %d of %d compressed bytes; it should stop at the limit", len(bomb)-st.br.Len(), len(bomb))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("inflating the bomb allocated %d bytes", alloc)
	}
	// The reader is reusable after a refusal.
	good := zlibOf([]byte("hello"))
	if out, err := st.inflate(good); err != nil || string(out) != "hello" {
		t.Fatalf("reuse after bomb: %q, %v", out, err)
	}
	// Exactly MaxInflated bytes are accepted, one more refused.
	if _, err := st.inflate(zlibOf(make([]byte, MaxInflated))); err != nil {
		t.Errorf("MaxInflated bytes: %v", err)
	}
	if _, err := st.inflate(zlibOf(make([]byte, MaxInflated+1))); !errors.Is(err, ErrMalformed) {
		t.Errorf("MaxInflated+1 bytes: err = %v", err)
	}
}

func TestStoredZlib(t *testing.T) {
	t.Parallel()
	st := statePool.New().(*decodeState)
	for _, n := range []int{0, 1, 335, MaxInflated} {
		data := bytes.Repeat([]byte{0xa5, 0x5a, 0x33}, n)[:n]
		z := appendStoredZlib(nil, data)
		if len(z) != n+11 {
			t.Errorf("%d bytes: stored stream is %d bytes", n, len(z))
		}
		out, err := st.inflate(z)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("%d bytes: inflate = %v", n, err)
		}
	}
}

// TestCompressChoice: the stored form is used unless compression saves a
// QR version.
func TestCompressChoice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	textLen := func(z []byte) int { return len(Prefix) + base45EncodedLen(len(z)) }
	sawStored, sawCompressed := false, false
	for _, cose := range [][]byte{
		unwrapText(t, mustSign(t, f.signer, sampleClaims(Phone))),
		bytes.Repeat([]byte("compressible "), 40),
		bytes.Repeat([]byte{0}, 600),
	} {
		z, err := compress(cose)
		if err != nil {
			t.Fatal(err)
		}
		stored := appendStoredZlib(nil, cose)
		best := zlibOf(cose)
		isStored := bytes.Equal(z, stored)
		sawStored = sawStored || isStored
		sawCompressed = sawCompressed || !isStored
		if min(qrVersionM(textLen(stored)), qrVersionM(textLen(best))) != qrVersionM(textLen(z)) {
			t.Errorf("chose a stream of %d bytes: not the smallest QR version", len(z))
		}
		if !isStored && qrVersionM(textLen(stored)) <= qrVersionM(textLen(z)) {
			t.Errorf("compressed although stored fits the same version")
		}
	}
	if !sawStored || !sawCompressed {
		t.Errorf("stored %v, compressed %v: both forms should occur", sawStored, sawCompressed)
	}
}

func TestCertCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	v := f.verifier()
	text := mustSign(t, f.signer, sampleClaims(Phone))

	// A failed verification is not remembered.
	bad := passWithCert(t, f.issuer, flip(f.cert, len(f.cert)-1))
	for range 2 {
		if _, err := v.Verify(bad, testNow, 0); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v", err)
		}
	}
	if len(v.certs) != 0 {
		t.Fatalf("cache holds %d entries after failures", len(v.certs))
	}

	if _, err := v.Verify(text, testNow, 0); err != nil {
		t.Fatal(err)
	}
	if len(v.certs) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(v.certs))
	}
	// Validity is checked on every call, cached or not.
	late := testNow.Add(400 * 24 * time.Hour)
	if _, err := v.Verify(text, late, 0); !errors.Is(err, ErrIssuerExpired) {
		t.Fatalf("cached cert after expiry: err = %v", err)
	}
	// Skew widens the window on both sides.
	notAfter := testNow.Add(365 * 24 * time.Hour)
	if _, err := v.Verify(text, notAfter.Add(time.Minute), 2*time.Minute); err != nil {
		t.Errorf("within skew after NotAfter: %v", err)
	}
	if _, err := v.Verify(text, notAfter.Add(3*time.Minute), 2*time.Minute); !errors.Is(err, ErrIssuerExpired) {
		t.Errorf("beyond skew after NotAfter: %v", err)
	}
	// A returned Issuer is a copy: changing it does not reach the cache.
	p, _ := v.Verify(text, testNow, 0)
	p.Issuer.District = "tampered"
	if p2, err := v.Verify(text, testNow, 0); err != nil || p2.Issuer.District != testDistrict {
		t.Fatalf("cache altered through a returned pass: %v, %v", p2, err)
	}

	// The cache is bounded.
	for i := range certCacheSize + 10 {
		nb := testNow.Add(-time.Duration(i+1) * time.Second)
		c := mustCert(t, f.root, f.issuer.Public(), testDistrict, nb, testNow.Add(time.Hour))
		if _, err := v.Verify(passWithCert(t, f.issuer, c), testNow, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.certs) > certCacheSize {
		t.Fatalf("cache holds %d entries, limit %d", len(v.certs), certCacheSize)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	fs := []*fixture{newFixture(t, AlgEdDSA, AlgEdDSA), newFixture(t, AlgES256, AlgES256)}
	v := NewVerifier(rootsOf(fs))
	var texts []string
	for _, f := range fs {
		for i := range 4 {
			c := sampleClaims(Phone)
			c.ID[0] = byte(i)
			texts = append(texts, mustSign(t, f.signer, c))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(texts))
	for g := range 8 {
		wg.Go(func() {
			for i := range texts {
				text := texts[(i+g)%len(texts)]
				p, err := v.Verify(text, testNow, 0)
				if err != nil {
					errs <- err
					continue
				}
				if p.ID[0] != byte((i+g)%len(texts)%4) {
					errs <- errors.New("wrong pass returned")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSignValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	edit := func(e func(c *Claims)) Claims { c := sampleClaims(Phone); e(&c); return c }
	for _, tc := range []struct {
		name string
		c    Claims
	}{
		{"zero ID", edit(func(c *Claims) { c.ID = ID{} })},
		{"zero subject", edit(func(c *Claims) { c.Subject = Subject{} })},
		{"colour 0", edit(func(c *Claims) { c.Color = 0 })},
		{"colour 4", edit(func(c *Claims) { c.Color = 4 })},
		{"kind 0", edit(func(c *Claims) { c.Kind = 0 })},
		{"doses -1", edit(func(c *Claims) { c.Doses = -1 })},
		{"doses 256", edit(func(c *Claims) { c.Doses = 256 })},
		{"exp = iat", edit(func(c *Claims) { c.ExpiresAt = c.IssuedAt })},
		{"exp < iat", edit(func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Hour) })},
		{"zero iat", edit(func(c *Claims) { c.IssuedAt = time.Time{} })},
		{"tested before 1970", edit(func(c *Claims) { c.TestedAt = time.Unix(-5, 0) })},
		{"name of 65 bytes", edit(func(c *Claims) { c.Name = strings.Repeat("a", 65) })},
		{"name invalid UTF-8", edit(func(c *Claims) { c.Name = "\xff" })},
		{"name with newline", edit(func(c *Claims) { c.Name = "张\n丰" })},
		{"ID tail of 9 bytes", edit(func(c *Claims) { c.IDTail = "123456789" })},
		{"other district", edit(func(c *Claims) { c.District = "110105" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if text, err := f.signer.Sign(&tc.c); err == nil {
				t.Fatalf("signed invalid claims: %s", text)
			}
		})
	}
	// An empty district is taken from the certificate, without touching
	// the caller's claims.
	c := sampleClaims(Phone)
	c.District = ""
	text, err := f.signer.Sign(&c)
	if err != nil {
		t.Fatal(err)
	}
	if c.District != "" {
		t.Error("Sign modified its argument")
	}
	if p, err := f.verifier().Verify(text, testNow, 0); err != nil || p.District != testDistrict {
		t.Fatalf("district from cert: %v, %v", p, err)
	}
	// Sub-second times are truncated, not refused.
	c = sampleClaims(Phone)
	c.IssuedAt = c.IssuedAt.Add(700 * time.Millisecond)
	if _, err := f.signer.Sign(&c); err != nil {
		t.Fatal(err)
	}
}

// TestSignPhoneFitsQR15: with both identifiers at their limit, the
// longest masked name and the largest keys, every phone pass fits a
// version-15 QR code at level M: no identifier the format accepts can
// make a pass unprintable. A name longer than any masked name still
// makes a pass too big: a phone pass is then refused, a paper pass is
// not.
func TestSignPhoneFitsQR15(t *testing.T) {
	t.Parallel()
	// Varied characters, so that zlib cannot shrink them.
	const identChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
	ident := func(label string, n int) string {
		b := make([]byte, n)
		newStream(label).Read(b)
		for i := range b {
			b[i] = identChars[int(b[i])%len(identChars)]
		}
		return string(b)
	}
	district := ident("district", MaxIdentLen)
	for _, rootAlg := range []Alg{AlgEdDSA, AlgES256} {
		for _, issuerAlg := range []Alg{AlgEdDSA, AlgES256} {
			root := mustKey(t, rootAlg, "root")
			issuer := mustKey(t, issuerAlg, "issuer")
			cert, err := IssueCert(root, Cert{Key: issuer.Public(), District: district, Appliance: ident("appliance", MaxIdentLen),
				NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner(issuer, cert)
			if err != nil {
				t.Fatal(err)
			}
			c := sampleClaims(Phone)
			c.District = district
			// The longest masked name: 16 characters, first and last
			// outside the BMP (4 bytes each).
			c.Name = MaskName("𠀀" + strings.Repeat("中", 20) + "𠀁")
			text, err := s.Sign(&c)
			if err != nil {
				t.Fatalf("%v/%v: %v", rootAlg, issuerAlg, err)
			}
			if v := qrVersionM(len(text)); v > 15 {
				t.Errorf("%v/%v: longest phone pass is %d characters, QR version %d-M", rootAlg, issuerAlg, len(text), v)
			}
			t.Logf("%v root, %v issuer: longest phone pass %d characters", rootAlg, issuerAlg, len(text))
			if rootAlg != AlgES256 || issuerAlg != AlgES256 {
				continue
			}
			// A 64-byte name (not masked) does not fit.
			c.Name = ident("name", maxNameLen)
			if text, err := s.Sign(&c); err == nil {
				t.Fatalf("signed a phone pass of %d characters", len(text))
			}
			c.Kind, c.ExpiresAt = Paper, c.IssuedAt.Add(PaperValidity)
			text, err = s.Sign(&c)
			if err != nil {
				t.Fatal(err)
			}
			if len(text) <= maxPhoneText {
				t.Fatalf("test pass is only %d characters", len(text))
			}
			if _, err := NewVerifier([]Root{{district, root.Public()}}).Verify(text, testNow, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A certificate made before appliance identifiers, with the appliance's
// name in it, still verifies: passes already issued stay valid. A new
// certificate cannot carry a name.
func TestLegacyApplianceNameCert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	iss := f.issuer.Public()
	cert := signedCOSE(t, f.root, protectedRaw(f.root.Public()), []byte{0xa0}, claimsMap(t, map[int]any{
		certDistrict: testDistrict, certAppliance: "浦东新区人民医院发热门诊东门", certAlg: int(AlgEdDSA), certKey: iss.Raw,
		certNotBefore: uint64(testNow.Add(-time.Hour).Unix()), certNotAfter: uint64(testNow.Add(time.Hour).Unix()),
	}))
	s, err := NewSigner(f.issuer, cert)
	if err != nil {
		t.Fatal(err)
	}
	c := sampleClaims(Paper)
	text, err := s.Sign(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier().Verify(text, testNow, 0); err != nil {
		t.Fatalf("legacy certificate: %v", err)
	}
	if _, err := IssueCert(f.root, Cert{Key: iss, District: testDistrict, Appliance: "东门闸机",
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}); err == nil {
		t.Fatal("IssueCert wrote an appliance name")
	}
}

func TestNewSignerChecksCert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgEdDSA, AlgEdDSA)
	other := mustKey(t, AlgEdDSA, "another issuer")
	if _, err := NewSigner(other, f.cert); err == nil {
		t.Error("NewSigner accepted a certificate for another key")
	}
	if _, err := NewSigner(f.issuer, f.cert[:len(f.cert)-1]); err == nil {
		t.Error("NewSigner accepted a truncated certificate")
	}
	if _, err := NewSigner(nil, f.cert); err == nil {
		t.Error("NewSigner accepted a nil key")
	}
}

func TestParseCert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, AlgES256, AlgEdDSA)
	c, err := ParseCert(f.cert, []Root{{testDistrict, mustKey(t, AlgEdDSA, "x").Public()}, {testDistrict, f.root.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if c.RootKID != f.root.Public().KID || c.Key.KID != f.issuer.Public().KID || c.District != testDistrict ||
		!c.NotBefore.Equal(testNow.Add(-24*time.Hour)) || !c.NotAfter.Equal(testNow.Add(365*24*time.Hour)) {
		t.Errorf("cert = %+v", c)
	}
	if _, err := ParseCert(f.cert, nil); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("no roots: err = %v", err)
	}
	if _, err := ParseCert(flip(f.cert, len(f.cert)-3), []Root{{testDistrict, f.root.Public()}}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("flipped: err = %v", err)
	}
	for _, bad := range []Cert{
		{Key: nil, District: "d", Appliance: "a", NotBefore: testNow, NotAfter: testNow.Add(time.Hour)},
		{Key: f.issuer.Public(), District: "", Appliance: "a", NotBefore: testNow, NotAfter: testNow.Add(time.Hour)},
		{Key: f.issuer.Public(), District: "d", Appliance: "", NotBefore: testNow, NotAfter: testNow.Add(time.Hour)},
		{Key: f.issuer.Public(), District: "d", Appliance: "a", NotBefore: testNow, NotAfter: testNow},
		{Key: f.issuer.Public(), District: strings.Repeat("d", 65), Appliance: "a", NotBefore: testNow, NotAfter: testNow.Add(time.Hour)},
	} {
		if _, err := IssueCert(f.root, bad); err == nil {
			t.Errorf("IssueCert accepted %+v", bad)
		}
	}
}
