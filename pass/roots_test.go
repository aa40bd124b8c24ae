package pass

import (
	"errors"
	"testing"
	"time"
)

// A root certifies issuers of its own district only: with the roots of
// districts A and B both trusted, a certificate signed by A's root that
// claims district B (and the passes under it) is refused.
func TestRootCertifiesOwnDistrictOnly(t *testing.T) {
	t.Parallel()
	const districtA, districtB = "310115", "110101"
	rootA, rootB := mustKey(t, AlgEdDSA, "root A"), mustKey(t, AlgES256, "root B")
	roots := []Root{{districtA, rootA.Public()}, {districtB, rootB.Public()}}
	v := NewVerifier(roots)
	issuer := mustKey(t, AlgEdDSA, "issuer")
	sign := func(root *PrivateKey, district string) string {
		cert := mustCert(t, root, issuer.Public(), district, testNow.Add(-time.Hour), testNow.Add(time.Hour))
		s, err := NewSigner(issuer, cert)
		if err != nil {
			t.Fatal(err)
		}
		c := sampleClaims(Phone)
		c.District = district
		return mustSign(t, s, c)
	}
	for _, c := range []struct {
		name     string
		root     *PrivateKey
		district string
		ok       bool
	}{
		{"A certifies A", rootA, districtA, true},
		{"B certifies B", rootB, districtB, true},
		{"A certifies B", rootA, districtB, false},
		{"B certifies A", rootB, districtA, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(sign(c.root, c.district), testNow, 0)
			if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrUnknownIssuer)) {
				t.Fatalf("verify: %v", err)
			}
			cert := mustCert(t, c.root, issuer.Public(), c.district, testNow.Add(-time.Hour), testNow.Add(time.Hour))
			_, err = ParseCert(cert, roots)
			if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrUnknownIssuer)) {
				t.Fatalf("parse certificate: %v", err)
			}
		})
	}
	// A root given without its district is trusted for nothing.
	if _, err := NewVerifier([]Root{{Key: rootA.Public()}}).Verify(sign(rootA, districtA), testNow, 0); !errors.Is(err, ErrUnknownIssuer) {
		t.Fatalf("root without a district: %v", err)
	}
}
