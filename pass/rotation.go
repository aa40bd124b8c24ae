package pass

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A root rotation record replaces a district root on purpose: the old
// root names its successor and signs that, and the new root signs the
// same bytes (proving its holder made the record). A checker accepts a
// new root of a district only through such a record whose old root it
// already trusts for that district. SPEC.md section 15 is the format.

// MaxRotationLen bounds an encoded rotation record.
const MaxRotationLen = 2 << 10

const rotationHeader = "passgate-root-rotation 1"

// ErrRotation is wrapped by every error of ParseRotation.
var ErrRotation = errors.New("not a valid root rotation record")

// Rotation is a parsed rotation record whose two signatures verified.
type Rotation struct {
	District string
	Old, New *PublicKey
	At       time.Time // when the rotation was made, whole seconds
}

func rotationBody(district string, old, new *PublicKey, at int64) []byte {
	return fmt.Appendf(nil, "%s\ndistrict %s\nold %s %x\nnew %s %x\nat %d\n",
		rotationHeader, district, old.Alg, old.Raw, new.Alg, new.Raw, at)
}

// SignRotation makes the record by which root old hands district over to
// root new, signed by both.
func SignRotation(district string, old, new *PrivateKey, at time.Time) ([]byte, error) {
	if old == nil || new == nil || old.pub == nil || new.pub == nil {
		return nil, errors.New("pass: rotation: missing key")
	}
	if old.pub.KID == new.pub.KID {
		return nil, errors.New("pass: rotation: the new root is the old one")
	}
	if err := checkText("district", district, 1, maxDistrictLen); err != nil {
		return nil, fmt.Errorf("pass: rotation: %w", err)
	}
	secs, err := unixSeconds("rotation time", at)
	if err != nil {
		return nil, fmt.Errorf("pass: rotation: %w", err)
	}
	body := rotationBody(district, old.pub, new.pub, int64(secs))
	so, err := old.sign(body)
	if err != nil {
		return nil, err
	}
	sn, err := new.sign(body)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(body, "signature-old %x\nsignature-new %x\n", so, sn), nil
}

// ParseRotation reads a rotation record (outside input: bounded, exactly
// seven LF-terminated lines, lower-case hex) and verifies both
// signatures. Whether the old root is trusted is the caller's to check.
func ParseRotation(b []byte) (*Rotation, error) {
	if len(b) > MaxRotationLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRotation, len(b), MaxRotationLen)
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		return nil, fmt.Errorf("%w: it does not end with a line feed", ErrRotation)
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) != 7 || lines[0] != rotationHeader {
		return nil, fmt.Errorf("%w: want %q and six lines", ErrRotation, rotationHeader)
	}
	value := func(i int, key string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], key+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d is not %q", ErrRotation, i+1, key)
		}
		return v, nil
	}
	key := func(i int, name string) (*PublicKey, error) {
		v, err := value(i, name)
		if err != nil {
			return nil, err
		}
		algName, keyHex, _ := strings.Cut(v, " ")
		var alg Alg
		switch algName {
		case AlgEdDSA.String():
			alg = AlgEdDSA
		case AlgES256.String():
			alg = AlgES256
		default:
			return nil, fmt.Errorf("%w: line %d: algorithm %q", ErrRotation, i+1, algName)
		}
		raw, err := lowerHex(keyHex)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRotation, i+1, err)
		}
		k, err := ParsePublicKey(alg, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRotation, i+1, err)
		}
		return k, nil
	}
	r := &Rotation{}
	var err error
	if r.District, err = value(1, "district"); err != nil {
		return nil, err
	}
	if err := checkText("district", r.District, 1, maxDistrictLen); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRotation, err)
	}
	if r.Old, err = key(2, "old"); err != nil {
		return nil, err
	}
	if r.New, err = key(3, "new"); err != nil {
		return nil, err
	}
	if r.Old.KID == r.New.KID {
		return nil, fmt.Errorf("%w: the new root is the old one", ErrRotation)
	}
	atText, err := value(4, "at")
	if err != nil {
		return nil, err
	}
	at, err := strconv.ParseUint(atText, 10, 64)
	if err != nil || strconv.FormatUint(at, 10) != atText {
		return nil, fmt.Errorf("%w: line 5: time %q", ErrRotation, atText)
	}
	if r.At, err = fromUnix("at", at); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRotation, err)
	}
	body := rotationBody(r.District, r.Old, r.New, int64(at))
	for i, signer := range []*PublicKey{r.Old, r.New} {
		name := [...]string{"signature-old", "signature-new"}[i]
		v, err := value(5+i, name)
		if err != nil {
			return nil, err
		}
		sig, err := lowerHex(v)
		if err != nil || !signer.Verify(body, sig) {
			return nil, fmt.Errorf("%w: %s does not verify with root %s", ErrRotation, name, signer.KID)
		}
	}
	return r, nil
}
