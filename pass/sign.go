package pass

import (
	"bytes"
	"errors"
	"fmt"
)

// maxPhoneText is the capacity of a version-15 QR code at level M in
// alphanumeric mode. A phone pass must fit it so that cheap scanners read
// it off a phone screen; with identifiers of usual length a pass takes
// about 525 characters (version 14).
const maxPhoneText = 600

// Signer signs passes with an issuer key and attaches its certificate.
// It is safe for concurrent use.
type Signer struct {
	key       *PrivateKey
	cert      []byte // encoded certificate, carried in every pass
	district  string // from the certificate
	protected []byte // encoded protected header, the same for every pass
}

// NewSigner returns a Signer for key whose encoded certificate is cert
// (as returned by IssueCert for key's public key).
//
// The certificate's root signature is not checked here (the signer need
// not hold the roots), but it must decode and certify exactly key:
// otherwise every pass signed would be refused by every checker.
func NewSigner(key *PrivateKey, cert []byte) (*Signer, error) {
	if key == nil || key.pub == nil {
		return nil, errors.New("pass: new signer: no key")
	}
	m, err := decodeSign1(cert, false)
	if err != nil {
		return nil, fmt.Errorf("pass: new signer: certificate: %w", err)
	}
	c, err := decodeCertPayload(m.payload)
	if err != nil {
		return nil, fmt.Errorf("pass: new signer: %w", err)
	}
	if c.Key.KID != key.pub.KID {
		return nil, fmt.Errorf("pass: new signer: certificate is for key %s, not %s", c.Key.KID, key.pub.KID)
	}
	protected, err := encodeProtected(key.pub)
	if err != nil {
		return nil, err
	}
	return &Signer{
		key:       key,
		cert:      bytes.Clone(cert),
		district:  c.District,
		protected: protected,
	}, nil
}

// Sign encodes and signs c and returns the pass text ("PG1:..."). It
// validates the claims (colour, kind, lengths, times) first.
//
// c.District must equal the certificate's district, since checkers refuse
// a pass naming another district than its certificate; when empty it is
// taken from the certificate. c itself is not modified. Times are sent as
// whole seconds. A phone pass that would not fit a version-15 QR code at
// level M (600 characters) is refused.
func (s *Signer) Sign(c *Claims) (string, error) {
	if c == nil {
		return "", errors.New("pass: sign: no claims")
	}
	cl := *c
	if cl.District == "" {
		cl.District = s.district
	} else if cl.District != s.district {
		return "", fmt.Errorf("pass: sign: claims name district %q, certificate is for %q", cl.District, s.district)
	}
	payload, err := encodeClaims(&cl)
	if err != nil {
		return "", fmt.Errorf("pass: sign: invalid claims: %w", err)
	}
	cose, err := encodeSign1(s.key, s.protected, s.cert, payload)
	if err != nil {
		return "", fmt.Errorf("pass: sign: %w", err)
	}
	text, err := wrap(cose)
	if err != nil {
		return "", err
	}
	if cl.Kind == Phone && len(text) > maxPhoneText {
		return "", fmt.Errorf("pass: sign: phone pass of %d characters exceeds a version-15 QR code at level M (%d); use shorter district and appliance identifiers", len(text), maxPhoneText)
	}
	return text, nil
}
