package pass

import (
	"sync"
	"time"
)

// certCacheSize bounds the verified-certificate cache. A district has one
// certificate per issuing appliance, so 1024 covers every issuer a checker
// will meet; past that an arbitrary entry is dropped, which costs one
// extra root verification when it comes back.
const certCacheSize = 1024

// Verifier verifies passes against a set of trusted district roots. It is
// safe for concurrent use and remembers certificates it has verified (by
// hash) so that a pass costs one signature verification, not two.
type Verifier struct {
	roots map[KeyID]Root

	mu sync.RWMutex
	// certs maps the exact bytes of certificates whose root signature
	// verified to their decoded form. The bytes themselves are the key,
	// not a digest of them: looking up ~170 bytes in a map takes about
	// 50 ns against 250 ns for SHA-256 and a lookup, compares them in full
	// on a hit, and needs no argument about collisions.
	certs map[string]*Cert
}

// Root is a trusted district root: its key, and the district it speaks
// for. A root certifies issuers of its own district only; a certificate
// it signed naming another district is refused (ErrUnknownIssuer), so a
// district whose root is trusted elsewhere cannot issue passes in the
// name of the districts trusted alongside it.
type Root struct {
	District string
	Key      *PublicKey
}

// NewVerifier returns a Verifier trusting roots. Entries without a key or
// a district are ignored. The keys must not be modified afterwards.
func NewVerifier(roots []Root) *Verifier {
	v := &Verifier{
		roots: make(map[KeyID]Root, len(roots)),
		certs: make(map[string]*Cert),
	}
	for _, r := range roots {
		if r.Key != nil && r.District != "" {
			v.roots[r.Key.KID] = r
		}
	}
	return v
}

// Verify decodes text and verifies its signature chain at time now: the
// certificate must chain to a trusted root and be valid at now (within
// skew); the pass must be signed by the certified key. It does not judge
// the pass's own validity period, revocation or policy: that is the
// checker's job. Errors wrap the Err* values of this package.
//
// The pass signature is verified before the claims are decoded, so a pass
// whose claims are damaged reports ErrBadSignature and only an issuer's
// own mistakes report a malformed claims set. The returned Pass is the
// caller's; its Issuer.Key is shared between passes and must not be
// modified.
func (v *Verifier) Verify(text string, now time.Time, skew time.Duration) (*Pass, error) {
	return v.verify(text, now, skew, true)
}

// verify is Verify with the pass signature check optional, so benchmarks
// can measure everything around the signature.
func (v *Verifier) verify(text string, now time.Time, skew time.Duration, checkSig bool) (*Pass, error) {
	st := statePool.Get().(*decodeState)
	defer statePool.Put(st)

	cose, err := st.unwrap(text)
	if err != nil {
		return nil, err
	}
	m, err := decodeSign1(cose, true)
	if err != nil {
		return nil, err
	}
	if m.cert == nil {
		return nil, wrapf(ErrUnknownIssuer, "key %s: no certificate in the pass", m.kid)
	}
	cert, err := v.cert(m.cert)
	if err != nil {
		return nil, err
	}
	if err := cert.validAt(now, skew); err != nil {
		return nil, err
	}
	// The kid is what revocation lists and scan records name, so it must
	// be the key that actually signs.
	if m.kid != cert.Key.KID {
		return nil, wrapf(ErrUnknownIssuer, "pass kid %s is not the certified key %s", m.kid, cert.Key.KID)
	}
	if m.alg != cert.Key.Alg {
		return nil, wrapf(ErrBadSignature, "pass alg %v does not match the certified key (%v)", m.alg, cert.Key.Alg)
	}
	if checkSig {
		st.tbs = appendSigStructure(st.tbs[:0], m.protected, m.payload)
		if !cert.Key.Verify(st.tbs, m.sig) {
			return nil, wrapf(ErrBadSignature, "pass signature does not verify with key %s", cert.Key.KID)
		}
	}
	// The certificate is copied per pass, so callers cannot alter the
	// cache; pass and copy share one allocation.
	a := &struct {
		p      Pass
		issuer Cert
	}{issuer: *cert}
	p := &a.p
	p.Alg, p.KeyID, p.Issuer = m.alg, m.kid, &a.issuer
	if err := decodeClaimsIn(m.payload, &p.Claims, cert.District); err != nil {
		return nil, err
	}
	if p.District != cert.District {
		return nil, wrapf(ErrUnknownIssuer, "pass names district %q, key %s is certified for %q", p.District, cert.Key.KID, cert.District)
	}
	return p, nil
}

// cert returns the verified certificate encoded in b, from the cache when
// these exact bytes verified before. Validity times are not checked here:
// they depend on now, which the cache does not.
func (v *Verifier) cert(b []byte) (*Cert, error) {
	v.mu.RLock()
	c := v.certs[string(b)] // no allocation: the compiler elides the conversion
	v.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	c, err := v.parseCert(b)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.certs == nil { // a zero Verifier trusts nothing but must not panic
		v.certs = make(map[string]*Cert)
	}
	if len(v.certs) >= certCacheSize {
		for k := range v.certs { // map order is randomised: random eviction
			delete(v.certs, k)
			break
		}
	}
	v.certs[string(b)] = c
	v.mu.Unlock()
	return c, nil
}

func (v *Verifier) root(kid KeyID) (Root, bool) {
	r, ok := v.roots[kid]
	return r, ok
}
