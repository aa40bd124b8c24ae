package pass

import (
	"errors"
	"fmt"
	"time"
)

// A city record is what a city root key says about one district root:
// that it is certified (a pass chaining to it verifies at every gate of
// the city) or that it is retired (no pass chaining to it verifies any
// more). Both are COSE_Sign1 structures signed by the city root, so a
// district hub can carry them to its appliances without being able to
// forge them. SPEC.md section 17 is the format.

// MaxCityRecordLen bounds an encoded city record: an ES256 record is
// about 200 bytes.
const MaxCityRecordLen = 1024

// CityRecordKind says what a city record states.
type CityRecordKind int

// City record kinds.
const (
	// CityCertify: the district root is trusted from NotBefore to
	// NotAfter.
	CityCertify CityRecordKind = 1
	// CityRetire: the district root is trusted no more from RetiredAt.
	CityRetire CityRecordKind = 2
)

func (k CityRecordKind) String() string {
	switch k {
	case CityCertify:
		return "certify"
	case CityRetire:
		return "retire"
	}
	return fmt.Sprintf("CityRecordKind(%d)", int(k))
}

// CityRecord is a parsed city record whose signature verified.
type CityRecord struct {
	Kind     CityRecordKind
	District string     // the district the root speaks for (CheckIdent)
	Root     *PublicKey // the district root the record is about
	// NotBefore and NotAfter bound a certification; zero in a retirement.
	NotBefore, NotAfter time.Time
	// RetiredAt is when a retirement takes effect; zero in a
	// certification.
	RetiredAt time.Time
	CityKID   KeyID // the city root that signed the record
}

// City record payload keys.
const (
	cityKind      = 1
	cityDistrict  = 2
	cityAlg       = 3
	cityKey       = 4
	cityNotBefore = 5
	cityNotAfter  = 6
	cityRetiredAt = 7
)

type cityCertifyWire struct {
	Kind      int    `cbor:"1,keyasint"`
	District  string `cbor:"2,keyasint"`
	Alg       int    `cbor:"3,keyasint"`
	Key       []byte `cbor:"4,keyasint"`
	NotBefore uint64 `cbor:"5,keyasint"`
	NotAfter  uint64 `cbor:"6,keyasint"`
}

type cityRetireWire struct {
	Kind      int    `cbor:"1,keyasint"`
	District  string `cbor:"2,keyasint"`
	Alg       int    `cbor:"3,keyasint"`
	Key       []byte `cbor:"4,keyasint"`
	RetiredAt uint64 `cbor:"7,keyasint"`
}

// CertifyDistrictRoot signs, with the city root city, that root is the
// root of district from notBefore to notAfter (whole seconds).
func CertifyDistrictRoot(city *PrivateKey, district string, root *PublicKey, notBefore, notAfter time.Time) ([]byte, error) {
	key, err := cityCheckInput(city, district, root)
	if err != nil {
		return nil, fmt.Errorf("pass: certify district root: %w", err)
	}
	nb, err := unixSeconds("not-before", notBefore)
	if err != nil {
		return nil, fmt.Errorf("pass: certify district root: %w", err)
	}
	na, err := unixSeconds("not-after", notAfter)
	if err != nil {
		return nil, fmt.Errorf("pass: certify district root: %w", err)
	}
	if nb >= na {
		return nil, errors.New("pass: certify district root: not-before is not before not-after")
	}
	payload, err := encMode.Marshal(cityCertifyWire{Kind: int(CityCertify), District: district, Alg: int(key.Alg),
		Key: key.Raw, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	return signCityRecord(city, payload)
}

// RetireDistrictRoot signs, with the city root city, that root of
// district is trusted no more from at (whole seconds).
func RetireDistrictRoot(city *PrivateKey, district string, root *PublicKey, at time.Time) ([]byte, error) {
	key, err := cityCheckInput(city, district, root)
	if err != nil {
		return nil, fmt.Errorf("pass: retire district root: %w", err)
	}
	secs, err := unixSeconds("retired-at", at)
	if err != nil {
		return nil, fmt.Errorf("pass: retire district root: %w", err)
	}
	payload, err := encMode.Marshal(cityRetireWire{Kind: int(CityRetire), District: district, Alg: int(key.Alg),
		Key: key.Raw, RetiredAt: secs})
	if err != nil {
		return nil, err
	}
	return signCityRecord(city, payload)
}

// cityCheckInput checks the signer, the district and the root, and
// returns the root parsed again (its KID and material are not taken
// from the caller).
func cityCheckInput(city *PrivateKey, district string, root *PublicKey) (*PublicKey, error) {
	if city == nil || city.pub == nil {
		return nil, errors.New("no city key")
	}
	if root == nil {
		return nil, errors.New("no district root")
	}
	if err := CheckIdent("district", district); err != nil {
		return nil, err
	}
	key, err := ParsePublicKey(root.Alg, root.Raw)
	if err != nil {
		return nil, err
	}
	if key.KID == city.pub.KID {
		return nil, errors.New("the city key cannot certify itself as a district root")
	}
	return key, nil
}

func signCityRecord(city *PrivateKey, payload []byte) ([]byte, error) {
	protected, err := encodeProtected(city.pub)
	if err != nil {
		return nil, err
	}
	return encodeSign1(city, protected, nil, payload)
}

// ParseCityRecord decodes b (outside input: at most MaxCityRecordLen
// bytes) and verifies it against city, the one city root trusted. It
// does not judge times against a clock: the caller does. Errors wrap
// ErrMalformed, ErrUnsupportedAlg, ErrUnknownIssuer (signed by another
// key than city) or ErrBadSignature.
func ParseCityRecord(b []byte, city *PublicKey) (*CityRecord, error) {
	if city == nil {
		return nil, wrapf(ErrUnknownIssuer, "city record: no city root trusted")
	}
	if len(b) > MaxCityRecordLen {
		return nil, malformed("city record: %d bytes, limit %d", len(b), MaxCityRecordLen)
	}
	m, err := decodeSign1(b, false)
	if err != nil {
		return nil, fmt.Errorf("city record: %w", err)
	}
	if m.kid != city.KID {
		return nil, wrapf(ErrUnknownIssuer, "city record signed by %s, not by the city root %s", m.kid, city.KID)
	}
	if m.alg != city.Alg {
		return nil, wrapf(ErrBadSignature, "city record: alg %v does not match the city root (%v)", m.alg, city.Alg)
	}
	if !city.Verify(appendSigStructure(nil, m.protected, m.payload), m.sig) {
		return nil, wrapf(ErrBadSignature, "city record: signature does not verify")
	}
	rec, err := decodeCityPayload(m.payload)
	if err != nil {
		return nil, err
	}
	rec.CityKID = city.KID
	return rec, nil
}

// decodeCityPayload decodes {1: kind, 2: district, 3: alg, 4: key, then
// 5: not-before and 6: not-after (certify) or 7: retired-at (retire)};
// every key the kind needs is required and no other is allowed.
func decodeCityPayload(b []byte) (*CityRecord, error) {
	if err := wellformed("city record payload", b); err != nil {
		return nil, err
	}
	r := cborReader{b: b}
	n, err := r.container(majorMap)
	if err != nil {
		return nil, malformed("city record payload: %v", err)
	}
	var (
		seen       keySet
		rec        CityRecord
		kind, alg  int64
		raw, s     []byte
		nb, na, at uint64
		payloadErr = func(err error) error { return malformed("city record payload: %v", err) }
	)
	for range n {
		k, err := r.int()
		if err != nil {
			return nil, payloadErr(err)
		}
		if k < cityKind || k > cityRetiredAt {
			return nil, malformed("city record payload: unknown key %d", k)
		}
		if err := seen.add(int(k)); err != nil {
			return nil, payloadErr(err)
		}
		switch k {
		case cityKind:
			kind, err = r.int()
		case cityDistrict:
			if s, err = r.text(); err == nil {
				rec.District = string(s)
			}
		case cityAlg:
			alg, err = r.int()
		case cityKey:
			raw, err = r.bytes()
		case cityNotBefore:
			nb, err = r.uint()
		case cityNotAfter:
			na, err = r.uint()
		case cityRetiredAt:
			at, err = r.uint()
		}
		if err != nil {
			return nil, malformed("city record payload key %d: %v", k, err)
		}
	}
	if err := r.end(); err != nil {
		return nil, payloadErr(err)
	}
	const common = 1<<cityKind | 1<<cityDistrict | 1<<cityAlg | 1<<cityKey
	rec.Kind = CityRecordKind(kind)
	switch {
	case seen&common != common:
		return nil, malformed("city record payload: missing key (have %08b)", seen)
	case rec.Kind == CityCertify && seen == common|1<<cityNotBefore|1<<cityNotAfter:
		if rec.NotBefore, err = fromUnix("not-before", nb); err != nil {
			return nil, payloadErr(err)
		}
		if rec.NotAfter, err = fromUnix("not-after", na); err != nil {
			return nil, payloadErr(err)
		}
		if nb >= na {
			return nil, malformed("city record payload: not-before is not before not-after")
		}
	case rec.Kind == CityRetire && seen == common|1<<cityRetiredAt:
		if rec.RetiredAt, err = fromUnix("retired-at", at); err != nil {
			return nil, payloadErr(err)
		}
	default:
		return nil, malformed("city record payload: kind %d with keys %08b", kind, seen)
	}
	if err := CheckIdent("district", rec.District); err != nil {
		return nil, payloadErr(err)
	}
	if alg != int64(AlgEdDSA) && alg != int64(AlgES256) {
		return nil, wrapf(ErrUnsupportedAlg, "city record payload: district root alg %d", alg)
	}
	key, err := ParsePublicKey(Alg(alg), raw)
	if err != nil {
		return nil, malformed("city record payload: district root: %v", err)
	}
	rec.Root = key
	return &rec, nil
}
