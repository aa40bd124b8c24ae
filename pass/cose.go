package pass

import (
	"github.com/fxamacker/cbor/v2"
)

// COSE_Sign1 (RFC 9052 section 4.2), used for both passes and issuer
// certificates.

// tagSign1 is the CBOR tag of COSE_Sign1; 0xd2 is its one-byte encoding.
const (
	tagSign1     = 18
	tagSign1Byte = 0xc0 | tagSign1
)

// sign1 is a decoded COSE_Sign1. Byte slices alias the input.
type sign1 struct {
	protected []byte // serialized protected header, as signed
	alg       Alg
	kid       KeyID
	cert      []byte // unprotected label -65537; nil when absent
	payload   []byte
	sig       []byte
}

// decodeSign1 decodes a tagged COSE_Sign1 and its protected header. A
// certificate in the unprotected header is accepted only if allowCert
// (passes carry one, certificates do not). Errors wrap ErrMalformed, or
// ErrUnsupportedAlg when the algorithm is missing or not EdDSA/ES256.
func decodeSign1(b []byte, allowCert bool) (sign1, error) {
	var m sign1
	if len(b) == 0 {
		return m, malformed("COSE: empty")
	}
	// Tag 18 must be present and encoded in its one-byte form; the library
	// gate below forbids every tag, so the tag is consumed here.
	if b[0] != tagSign1Byte {
		if b[0]>>5 == majorTag {
			return m, malformed("COSE: tagged 0x%02x, want tag 18 (COSE_Sign1)", b[0])
		}
		return m, malformed("COSE: not tagged as COSE_Sign1")
	}
	body := b[1:]
	if err := wellformed("COSE", body); err != nil {
		return m, err
	}
	r := cborReader{b: body}
	n, err := r.container(majorArray)
	if err != nil {
		return m, malformed("COSE: %v", err)
	}
	if n != 4 {
		return m, malformed("COSE_Sign1 has %d elements, want 4", n)
	}
	if m.protected, err = r.bytes(); err != nil {
		return m, malformed("COSE protected header: %v", err)
	}
	if err = m.decodeUnprotected(&r, allowCert); err != nil {
		return m, err
	}
	if m.payload, err = r.bytes(); err != nil {
		return m, malformed("COSE payload: %v", err)
	}
	if m.sig, err = r.bytes(); err != nil {
		return m, malformed("COSE signature: %v", err)
	}
	if err = r.end(); err != nil {
		return m, malformed("COSE: %v", err)
	}
	return m, m.decodeProtected()
}

func (m *sign1) decodeUnprotected(r *cborReader, allowCert bool) error {
	n, err := r.container(majorMap)
	if err != nil {
		return malformed("COSE unprotected header: %v", err)
	}
	var seen keySet
	for range n {
		k, err := r.int()
		if err != nil {
			return malformed("COSE unprotected header key: %v", err)
		}
		if k != labelPrivate || !allowCert {
			return malformed("COSE unprotected header: unknown label %d", k)
		}
		if err := seen.add(0); err != nil {
			return malformed("COSE unprotected header: %v", err)
		}
		if m.cert, err = r.bytes(); err != nil {
			return malformed("COSE certificate: %v", err)
		}
	}
	return nil
}

// decodeProtected decodes the protected header {1: alg, 4: kid}. Any other
// label is refused: a verifier that does not understand a header cannot
// honour it, and the format has no use for one.
func (m *sign1) decodeProtected() error {
	var seen keySet
	textAlg := false
	// A zero-length protected header is the empty map (RFC 9052 section
	// 3): it has no alg.
	if len(m.protected) > 0 {
		if err := wellformed("COSE protected header", m.protected); err != nil {
			return err
		}
		r := cborReader{b: m.protected}
		n, err := r.container(majorMap)
		if err != nil {
			return malformed("COSE protected header: %v", err)
		}
		for range n {
			k, err := r.int()
			if err != nil {
				return malformed("COSE protected header key: %v", err)
			}
			switch k {
			case headerAlg:
				err = seen.add(0)
				if err != nil {
					break
				}
				// COSE allows text algorithm names; none is supported.
				if t, _ := r.peek(); t == majorText {
					textAlg = true
					_, err = r.text()
					break
				}
				var a int64
				a, err = r.int()
				m.alg = Alg(a)
				if a != int64(m.alg) { // does not fit Alg: certainly unsupported
					m.alg = 0
				}
			case headerKID:
				if err = seen.add(1); err != nil {
					break
				}
				var kid []byte
				if kid, err = r.bytes(); err == nil && len(kid) != len(m.kid) {
					return malformed("COSE kid is %d bytes, want %d", len(kid), len(m.kid))
				}
				copy(m.kid[:], kid)
			default:
				return malformed("COSE protected header: unknown label %d", k)
			}
			if err != nil {
				return malformed("COSE protected header: %v", err)
			}
		}
		if err := r.end(); err != nil {
			return malformed("COSE protected header: %v", err)
		}
	}
	switch {
	case !seen.has(0):
		return unsupported("no alg in protected header")
	case textAlg:
		return unsupported("text alg names are not supported")
	case !m.alg.supported():
		return unsupported("alg %d", int(m.alg))
	case !seen.has(1):
		return malformed("COSE protected header: no kid")
	}
	return nil
}

// appendSigStructure appends the bytes that are signed (RFC 9052 section
// 4.4): ["Signature1", protected, empty external AAD, payload].
func appendSigStructure(dst, protected, payload []byte) []byte {
	dst = append(dst, 0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1')
	dst = appendBytes(dst, protected)
	dst = append(dst, 0x40)
	return appendBytes(dst, payload)
}

// Wire structures for encoding (the encoder sorts keys deterministically).
type protectedWire struct {
	Alg int    `cbor:"1,keyasint"`
	KID []byte `cbor:"4,keyasint"`
}

type unprotectedWire struct {
	Cert []byte `cbor:"-65537,keyasint,omitempty"`
}

type sign1Wire struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected unprotectedWire
	Payload     []byte
	Signature   []byte
}

// encodeProtected encodes the protected header for key.
func encodeProtected(key *PublicKey) ([]byte, error) {
	return encMode.Marshal(protectedWire{Alg: int(key.Alg), KID: key.KID[:]})
}

// encodeSign1 signs payload with key under the given protected header
// (from encodeProtected) and returns the tagged COSE_Sign1 bytes, with
// cert (if any) in the unprotected header.
func encodeSign1(key *PrivateKey, protected, cert, payload []byte) ([]byte, error) {
	sig, err := key.sign(appendSigStructure(nil, protected, payload))
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(cbor.Tag{Number: tagSign1, Content: sign1Wire{
		Protected:   protected,
		Unprotected: unprotectedWire{Cert: cert},
		Payload:     payload,
		Signature:   sig,
	}})
}
