package pass

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var sentinels = []error{ErrNotAPass, ErrMalformed, ErrBadSignature, ErrUnknownIssuer, ErrIssuerExpired, ErrUnsupportedAlg}

// fuzzFixtures are the keys behind the committed seed corpus: fixed, so
// the seeds stay valid passes.
func fuzzFixtures(t testing.TB) []*fixture {
	return []*fixture{newFixture(t, AlgEdDSA, AlgEdDSA), newFixture(t, AlgES256, AlgES256)}
}

// fuzzSeeds are the committed seeds, by file name: two valid passes and
// damaged ones reaching different layers.
func fuzzSeeds(t testing.TB, fs []*fixture) map[string]string {
	ed := mustSign(t, fs[0].signer, sampleClaims(Phone))
	es := mustSign(t, fs[1].signer, sampleClaims(Paper))
	cose := unwrapText(t, ed)
	m, err := decodeSign1(cose, true)
	if err != nil {
		t.Fatal(err)
	}
	iss := fs[0].issuer
	return map[string]string{
		"valid-eddsa":          ed,
		"valid-es256":          es,
		"flipped-signature":    textOf(zlibOf(flip(cose, len(cose)-1))),
		"no-cert":              textOf(zlibOf(signedCOSE(t, iss, protectedRaw(iss.Public()), []byte{0xa0}, m.payload))),
		"hc1-prefix":           "HC1:" + ed[len(Prefix):],
		"bomb":                 textOf(zlibOf(make([]byte, 64<<10))),
		"truncated-zlib":       ed[:len(ed)-9],
		"indefinite-cose":      textOf(zlibOf(append(append([]byte{0xd2, 0x9f}, cose[2:]...), 0xff))),
		"not-zlib":             textOf(cose),
		"unknown-claim":        fs[0].passFromPayload(t, claimsMap(t, map[int]any{2: "x"})),
		"base45-overflow":      Prefix + ":::",
		"empty-after-prefix":   Prefix,
		"unsupported-alg":      textOf(zlibOf(signedCOSE(t, iss, cat([]byte{0xa2}, cbInt(headerAlg), cbInt(-257), cbInt(headerKID), cbBytes(iss.Public().KID[:])), unprotectedWith(fs[0].cert), m.payload))),
		"cert-of-other-issuer": passWithCert(t, iss, fs[1].cert),
	}
}

// TestFuzzCorpus writes the seed corpus with -update and otherwise checks
// that the committed corpus is current: the valid seeds still verify.
func TestFuzzCorpus(t *testing.T) {
	t.Parallel()
	fs := fuzzFixtures(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	seeds := fuzzSeeds(t, fs)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range seeds {
			body := "go test fuzz v1\nstring(" + strconv.Quote(text) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	v := NewVerifier(rootsOf(fs))
	for name := range seeds {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
			t.Fatalf("%s: not a fuzz corpus file", name)
		}
		text, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = v.Verify(text, testNow, time.Minute)
		if strings.HasPrefix(name, "valid-") != (err == nil) {
			t.Errorf("seed %s: err = %v", name, err)
		}
	}
}

// FuzzVerify feeds arbitrary text to Verifier.Verify. It must never panic,
// every error must be one of the package's classes, and a pass it accepts
// must be self-consistent and verify again, alike, with a fresh verifier.
func FuzzVerify(f *testing.F) {
	fs := fuzzFixtures(f)
	for _, s := range fuzzSeeds(f, fs) {
		f.Add(s)
	}
	f.Add("")
	f.Add("PG1:0")
	roots := rootsOf(fs)
	v := NewVerifier(roots)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := v.Verify(text, testNow, time.Minute)
		if err != nil {
			if p != nil {
				t.Fatalf("pass returned with error %v", err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("unclassified error %v", err)
		}
		if err := checkClaims(&p.Claims); err != nil {
			t.Fatalf("accepted invalid claims: %v", err)
		}
		if p.Issuer == nil || p.Issuer.Key == nil || p.KeyID != p.Issuer.Key.KID || p.Alg != p.Issuer.Key.Alg ||
			p.District != p.Issuer.District || p.Issuer.validAt(testNow, time.Minute) != nil {
			t.Fatalf("inconsistent pass %+v issuer %+v", p, p.Issuer)
		}
		p2, err := NewVerifier(roots).Verify(text, testNow, time.Minute)
		if err != nil || !claimsEqual(p.Claims, p2.Claims) || p2.KeyID != p.KeyID {
			t.Fatalf("re-verification differs: %v", err)
		}
		if !strings.HasPrefix(text, Prefix) || len(text) > MaxTextLen {
			t.Fatalf("accepted a text of %d bytes breaking the text rules", len(text))
		}
	})
}

// FuzzCOSE fuzzes below the text layer: arbitrary bytes are wrapped in a
// valid zlib stream and Base45, so mutations reach the COSE, certificate
// and claims decoders instead of dying at the zlib checksum. The same
// bytes are also fed to the claims and certificate payload decoders
// directly. Nothing may panic; a claims set that decodes must re-encode to
// one that decodes to the same claims.
func FuzzCOSE(f *testing.F) {
	fs := fuzzFixtures(f)
	for _, fx := range fs {
		cose := unwrapText(f, mustSign(f, fx.signer, sampleClaims(Phone)))
		m, err := decodeSign1(cose, true)
		if err != nil {
			f.Fatal(err)
		}
		cm, err := decodeSign1(fx.cert, false)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cose)
		f.Add(m.payload)
		f.Add(fx.cert)
		f.Add(cm.payload)
		f.Add(m.protected)
	}
	roots := rootsOf(fs)
	v := NewVerifier(roots)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxInflated {
			return
		}
		text := textOf(zlibOf(b))
		if len(text) <= MaxTextLen {
			p, err := v.Verify(text, testNow, time.Minute)
			if err == nil {
				if err := checkClaims(&p.Claims); err != nil {
					t.Fatalf("accepted invalid claims: %v", err)
				}
			} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownIssuer) &&
				!errors.Is(err, ErrIssuerExpired) && !errors.Is(err, ErrUnsupportedAlg) {
				t.Fatalf("unclassified error %v", err)
			}
		}
		var c Claims
		if err := decodeClaims(b, &c); err == nil {
			enc, err := encodeClaims(&c)
			if err != nil {
				t.Fatalf("decoded claims do not re-encode: %v", err)
			}
			var c2 Claims
			if err := decodeClaims(enc, &c2); err != nil || !claimsEqual(c, c2) {
				t.Fatalf("re-encoded claims differ: %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("claims error %v is not ErrMalformed", err)
		}
		if c, err := decodeCertPayload(b); err == nil {
			if c.Key == nil || !c.NotBefore.Before(c.NotAfter) {
				t.Fatalf("accepted an invalid certificate payload %+v", c)
			}
		}
		_, _ = ParseCert(b, roots)
	})
}
