package pass

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestCityRecord_RoundTrip(t *testing.T) {
	for _, alg := range []Alg{AlgEdDSA, AlgES256} {
		city := mustKey(t, alg, "city")
		root := mustKey(t, AlgEdDSA, "root")
		nb, na := testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour)
		b, err := CertifyDistrictRoot(city, testDistrict, root.Public(), nb, na)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxCityRecordLen {
			t.Fatalf("%v: record of %d bytes", alg, len(b))
		}
		r, err := ParseCityRecord(b, city.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != CityCertify || r.District != testDistrict || r.Root.KID != root.Public().KID ||
			!r.NotBefore.Equal(nb) || !r.NotAfter.Equal(na) || !r.RetiredAt.IsZero() || r.CityKID != city.Public().KID {
			t.Fatalf("%v: parsed %+v", alg, r)
		}
		b, err = RetireDistrictRoot(city, testDistrict, root.Public(), testNow)
		if err != nil {
			t.Fatal(err)
		}
		r, err = ParseCityRecord(b, city.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != CityRetire || !r.RetiredAt.Equal(testNow) || !r.NotAfter.IsZero() || r.Root.KID != root.Public().KID {
			t.Fatalf("%v: parsed %+v", alg, r)
		}
	}
}

func TestCityRecord_SignRefuses(t *testing.T) {
	city := mustKey(t, AlgEdDSA, "city")
	root := mustKey(t, AlgEdDSA, "root")
	if _, err := CertifyDistrictRoot(city, "bad district!", root.Public(), testNow, testNow.Add(time.Hour)); err == nil {
		t.Error("bad district accepted")
	}
	if _, err := CertifyDistrictRoot(city, testDistrict, root.Public(), testNow, testNow); err == nil {
		t.Error("empty validity accepted")
	}
	if _, err := CertifyDistrictRoot(city, testDistrict, city.Public(), testNow, testNow.Add(time.Hour)); err == nil {
		t.Error("the city key certified itself")
	}
	if _, err := RetireDistrictRoot(nil, testDistrict, root.Public(), testNow); err == nil {
		t.Error("no key accepted")
	}
}

// Every hostile record is refused with a classified error, never
// accepted.
func TestParseCityRecord_Hostile(t *testing.T) {
	city := mustKey(t, AlgEdDSA, "city")
	other := mustKey(t, AlgEdDSA, "other city")
	root := mustKey(t, AlgEdDSA, "root")
	nb, na := uint64(testNow.Unix()), uint64(testNow.Add(time.Hour).Unix())
	raw := root.Public().Raw
	signed := func(payload map[int]any) []byte {
		p, err := encMode.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		b, err := signCityRecord(city, p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good, err := CertifyDistrictRoot(city, testDistrict, root.Public(), testNow, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := CertifyDistrictRoot(other, testDistrict, root.Public(), testNow, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-70] ^= 1 // inside the payload
	badSig := bytes.Clone(good)
	badSig[len(badSig)-1] ^= 1
	issuerCert := mustCert(t, city, root.Public(), testDistrict, testNow, testNow.Add(time.Hour))
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"too long", append(bytes.Clone(good), make([]byte, MaxCityRecordLen)...), ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"not COSE", []byte("passgate-city 1"), ErrMalformed},
		{"another city", byOther, ErrUnknownIssuer},
		{"payload altered", tampered, ErrBadSignature},
		{"signature altered", badSig, ErrBadSignature},
		{"an issuer certificate, not a city record", issuerCert, ErrMalformed},
		{"unknown kind", signed(map[int]any{1: 3, 2: testDistrict, 3: -8, 4: raw, 5: nb, 6: na}), ErrMalformed},
		{"certify without not-after", signed(map[int]any{1: 1, 2: testDistrict, 3: -8, 4: raw, 5: nb}), ErrMalformed},
		{"certify with retired-at", signed(map[int]any{1: 1, 2: testDistrict, 3: -8, 4: raw, 5: nb, 6: na, 7: nb}), ErrMalformed},
		{"retire with validity", signed(map[int]any{1: 2, 2: testDistrict, 3: -8, 4: raw, 5: nb, 6: na}), ErrMalformed},
		{"no district", signed(map[int]any{1: 1, 3: -8, 4: raw, 5: nb, 6: na}), ErrMalformed},
		{"district not an identifier", signed(map[int]any{1: 1, 2: "东城区", 3: -8, 4: raw, 5: nb, 6: na}), ErrMalformed},
		{"unknown key", signed(map[int]any{1: 1, 2: testDistrict, 3: -8, 4: raw, 5: nb, 6: na, 8: 0}), ErrMalformed},
		{"not-before after not-after", signed(map[int]any{1: 1, 2: testDistrict, 3: -8, 4: raw, 5: na, 6: nb}), ErrMalformed},
		{"time zero", signed(map[int]any{1: 2, 2: testDistrict, 3: -8, 4: raw, 7: 0}), ErrMalformed},
		{"time beyond 9999", signed(map[int]any{1: 2, 2: testDistrict, 3: -8, 4: raw, 7: uint64(maxUnix + 1)}), ErrMalformed},
		{"unknown alg", signed(map[int]any{1: 1, 2: testDistrict, 3: -35, 4: raw, 5: nb, 6: na}), ErrUnsupportedAlg},
		{"key not a point", signed(map[int]any{1: 1, 2: testDistrict, 3: -8, 4: []byte{1, 2, 3}, 5: nb, 6: na}), ErrMalformed},
		{"kind as text", signed(map[int]any{1: "certify", 2: testDistrict, 3: -8, 4: raw, 5: nb, 6: na}), ErrMalformed},
		{"payload an array", func() []byte {
			p, _ := encMode.Marshal([]int{1, 2})
			b, _ := signCityRecord(city, p)
			return b
		}(), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseCityRecord(c.b, city.Public())
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	if _, err := ParseCityRecord(good, nil); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("no city root: %v", err)
	}
}

// FuzzCityRecord: no input panics, and an accepted record re-signs to
// one that parses the same.
func FuzzCityRecord(f *testing.F) {
	city := mustKey(f, AlgEdDSA, "city")
	root := mustKey(f, AlgES256, "root")
	c, err := CertifyDistrictRoot(city, testDistrict, root.Public(), testNow, testNow.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	r, err := RetireDistrictRoot(city, testDistrict, root.Public(), testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Add(r)
	m, _ := decodeSign1(c, false)
	f.Add(m.payload)
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseCityRecord(b, city.Public())
		if err == nil {
			if rec.Root == nil || CheckIdent("district", rec.District) != nil || (rec.Kind != CityCertify && rec.Kind != CityRetire) {
				t.Fatalf("accepted an invalid record %+v", rec)
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownIssuer) &&
			!errors.Is(err, ErrUnsupportedAlg) {
			t.Fatalf("unclassified error %v", err)
		}
		if _, err := decodeCityPayload(b); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedAlg) {
			t.Fatalf("unclassified payload error %v", err)
		}
	})
}
