package pass

import (
	"errors"
	"fmt"
	"time"
)

// Cert certifies an issuer key for a district: a COSE_Sign1 signed by the
// district root key.
type Cert struct {
	Key       *PublicKey // the certified issuer key
	District  string     // district identifier (CheckIdent), equals the pass's iss
	Appliance string     // short identifier of the appliance holding the key (CheckIdent), never its name
	NotBefore time.Time
	NotAfter  time.Time
	RootKID   KeyID // the root key that signed the certificate
}

// Certificate payload keys.
const (
	certDistrict  = 1
	certAppliance = 2
	certAlg       = 3
	certKey       = 4
	certNotBefore = 5
	certNotAfter  = 6
)

type certWire struct {
	District  string `cbor:"1,keyasint"`
	Appliance string `cbor:"2,keyasint"`
	Alg       int    `cbor:"3,keyasint"`
	Key       []byte `cbor:"4,keyasint"`
	NotBefore uint64 `cbor:"5,keyasint"`
	NotAfter  uint64 `cbor:"6,keyasint"`
}

// IssueCert signs c with root and returns the encoded certificate (the
// COSE_Sign1 CBOR bytes carried in passes). c.RootKID is ignored and set
// from root.
//
// The district and appliance are short identifiers (CheckIdent),
// NotBefore must be before NotAfter, and times are whole seconds (the
// fractional part is dropped). The certificate must stay valid for as
// long as the passes it signs are to be accepted: a checker refuses a pass
// whose certificate is not valid at the time of the check.
func IssueCert(root *PrivateKey, c Cert) ([]byte, error) {
	if root == nil || root.pub == nil {
		return nil, errors.New("pass: issue certificate: no root key")
	}
	if c.Key == nil {
		return nil, errors.New("pass: issue certificate: no issuer key")
	}
	// Re-parse rather than trust the caller's KID and parsed material.
	key, err := ParsePublicKey(c.Key.Alg, c.Key.Raw)
	if err != nil {
		return nil, fmt.Errorf("pass: issue certificate: %w", err)
	}
	if err := CheckIdent("district", c.District); err != nil {
		return nil, fmt.Errorf("pass: issue certificate: %w", err)
	}
	if err := CheckIdent("appliance", c.Appliance); err != nil {
		return nil, fmt.Errorf("pass: issue certificate: %w", err)
	}
	nb, err := unixSeconds("not-before", c.NotBefore)
	if err != nil {
		return nil, fmt.Errorf("pass: issue certificate: %w", err)
	}
	na, err := unixSeconds("not-after", c.NotAfter)
	if err != nil {
		return nil, fmt.Errorf("pass: issue certificate: %w", err)
	}
	if nb >= na {
		return nil, errors.New("pass: issue certificate: not-before is not before not-after")
	}
	payload, err := encMode.Marshal(certWire{
		District:  c.District,
		Appliance: c.Appliance,
		Alg:       int(key.Alg),
		Key:       key.Raw,
		NotBefore: nb,
		NotAfter:  na,
	})
	if err != nil {
		return nil, err
	}
	protected, err := encodeProtected(root.pub)
	if err != nil {
		return nil, err
	}
	return encodeSign1(root, protected, nil, payload)
}

// ParseCert decodes and verifies an encoded certificate against the given
// roots; it does not check validity times. Errors wrap ErrMalformed,
// ErrUnsupportedAlg, ErrUnknownIssuer (no root with the certificate's kid,
// or a certificate naming another district than its root's) or
// ErrBadSignature.
func ParseCert(b []byte, roots []Root) (*Cert, error) {
	return NewVerifier(roots).parseCert(b)
}

// parseCert decodes a certificate, finds its root and verifies the root's
// signature before looking at the payload; the certified district must be
// the root's. The result holds no reference to b.
func (v *Verifier) parseCert(b []byte) (*Cert, error) {
	m, err := decodeSign1(b, false)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	root, ok := v.root(m.kid)
	if !ok {
		return nil, wrapf(ErrUnknownIssuer, "certificate signed by root %s, which is not trusted", m.kid)
	}
	rk := root.Key
	if m.alg != rk.Alg {
		return nil, wrapf(ErrBadSignature, "certificate: alg %v does not match root key %s (%v)", m.alg, rk.KID, rk.Alg)
	}
	if !rk.Verify(appendSigStructure(nil, m.protected, m.payload), m.sig) {
		return nil, wrapf(ErrBadSignature, "certificate: root signature does not verify")
	}
	c, err := decodeCertPayload(m.payload)
	if err != nil {
		return nil, err
	}
	if c.District != root.District {
		return nil, wrapf(ErrUnknownIssuer, "certificate names district %q, its root %s is district %q's", c.District, rk.KID, root.District)
	}
	c.RootKID = rk.KID
	return c, nil
}

// decodeCertPayload decodes {1: district, 2: appliance, 3: alg, 4: key,
// 5: not-before, 6: not-after}; every key is required.
func decodeCertPayload(b []byte) (*Cert, error) {
	if err := wellformed("certificate payload", b); err != nil {
		return nil, err
	}
	r := cborReader{b: b}
	n, err := r.container(majorMap)
	if err != nil {
		return nil, malformed("certificate payload: %v", err)
	}
	var (
		seen    keySet
		c       Cert
		alg     int64
		raw     []byte
		nb, na  uint64
		s       []byte
		certErr = func(err error) error { return malformed("certificate payload: %v", err) }
	)
	for range n {
		k, err := r.int()
		if err != nil {
			return nil, certErr(err)
		}
		if k < certDistrict || k > certNotAfter {
			return nil, malformed("certificate payload: unknown key %d", k)
		}
		if err := seen.add(int(k)); err != nil {
			return nil, certErr(err)
		}
		switch k {
		case certDistrict:
			if s, err = r.text(); err == nil {
				c.District = string(s)
			}
		case certAppliance:
			if s, err = r.text(); err == nil {
				c.Appliance = string(s)
			}
		case certAlg:
			alg, err = r.int()
		case certKey:
			raw, err = r.bytes()
		case certNotBefore:
			nb, err = r.uint()
		case certNotAfter:
			na, err = r.uint()
		}
		if err != nil {
			return nil, malformed("certificate payload key %d: %v", k, err)
		}
	}
	if err := r.end(); err != nil {
		return nil, certErr(err)
	}
	if seen != 0b1111110 {
		return nil, malformed("certificate payload: missing key (have %07b)", seen)
	}
	if err := CheckIdent("district", c.District); err != nil {
		return nil, certErr(err)
	}
	// Certificates made before appliance identifiers carried the
	// appliance's name: still accepted, so passes already issued keep
	// verifying. Only IssueCert insists on an identifier.
	if err := checkText("appliance", c.Appliance, 1, maxLegacyApplianceLen); err != nil {
		return nil, certErr(err)
	}
	if a := Alg(alg); int64(a) != alg || !a.supported() {
		return nil, unsupported("certified key alg %d", alg)
	}
	if c.Key, err = ParsePublicKey(Alg(alg), raw); err != nil {
		return nil, certErr(err)
	}
	if c.NotBefore, err = fromUnix("not-before", nb); err != nil {
		return nil, certErr(err)
	}
	if c.NotAfter, err = fromUnix("not-after", na); err != nil {
		return nil, certErr(err)
	}
	if nb >= na {
		return nil, malformed("certificate payload: not-before is not before not-after")
	}
	return &c, nil
}

// validAt reports whether the certificate is valid at now, allowing skew
// either side: NotBefore-skew <= now <= NotAfter+skew.
func (c *Cert) validAt(now time.Time, skew time.Duration) error {
	if skew < 0 {
		skew = 0
	}
	if now.Add(skew).Before(c.NotBefore) {
		return wrapf(ErrIssuerExpired, "issuer certificate %s not valid before %v", c.Key.KID, c.NotBefore)
	}
	if now.Add(-skew).After(c.NotAfter) {
		return wrapf(ErrIssuerExpired, "issuer certificate %s expired at %v", c.Key.KID, c.NotAfter)
	}
	return nil
}
