package pass

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A trust anchor file hands a district's root public keys to someone who
// must decide whether to trust them: another district, a neighbouring
// city, an auditor. The receiver compares a root's fingerprint with the
// one the issuing district reads out over another channel (phone, in
// person) before trusting it; the file's own signatures, made by each root
// it lists, catch a file damaged on the way. SPEC.md section 14 is the
// format.

// Bounds of a trust anchor file: a few roots at most (one, two during a
// rotation), so these are far above any honest file.
const (
	MaxAnchorLen   = 16 << 10 // bytes of the whole file
	maxAnchorRoots = 8
	maxAnchorLine  = 512 // bytes of one line
	maxAnchorName  = 64  // bytes of the district's display name
)

// anchorHeader is the first line that is not a comment: format and
// version.
const anchorHeader = "passgate-trust-anchor 1"

// ErrAnchor is wrapped by every error of ParseAnchor.
var ErrAnchor = errors.New("not a valid passgate trust anchor file")

// Anchor is a parsed trust anchor file whose signatures all verified.
type Anchor struct {
	District string       // the district identifier the roots speak for
	Name     string       // the district's display name, may be empty
	Roots    []*PublicKey // at least one
}

// FormatFingerprint writes fp as 16 groups of 4 hex digits, the form to
// read out over the phone.
func FormatFingerprint(fp [32]byte) string {
	h := hex.EncodeToString(fp[:])
	var sb strings.Builder
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(h[i : i+4])
	}
	return sb.String()
}

// ParseFingerprint reads a fingerprint typed by a person: 64 hex digits,
// either case, with any spaces, colons or dashes between them.
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	if len(s) > 4*len(fp) {
		return fp, errors.New("fingerprint is too long")
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == ':' || r == '-' {
			return -1
		}
		return r
	}, s)
	if len(clean) != 2*len(fp) {
		return fp, fmt.Errorf("fingerprint has %d hex digits, want %d", len(clean), 2*len(fp))
	}
	if _, err := hex.Decode(fp[:], []byte(clean)); err != nil {
		return fp, errors.New("fingerprint is not hexadecimal")
	}
	return fp, nil
}

// anchorBody is the signed part of the file, in its one canonical form.
func anchorBody(district, name string, roots []*PublicKey) []byte {
	var b bytes.Buffer
	b.WriteString(anchorHeader + "\n")
	b.WriteString("district " + district + "\n")
	if name != "" {
		b.WriteString("name " + name + "\n")
	}
	for _, r := range roots {
		fp := r.Fingerprint()
		fmt.Fprintf(&b, "root %s %x\nfingerprint %x\n", r.Alg, r.Raw, fp[:])
	}
	return b.Bytes()
}

// MarshalAnchor writes the trust anchor file of district: each root's
// public key and fingerprint, signed by every one of the roots. A short
// comment at the top tells the reader what to compare.
func MarshalAnchor(district, name string, roots []*PrivateKey) ([]byte, error) {
	if len(roots) == 0 || len(roots) > maxAnchorRoots {
		return nil, fmt.Errorf("pass: trust anchor: %d roots, want 1 to %d", len(roots), maxAnchorRoots)
	}
	if err := checkText("district", district, 1, maxDistrictLen); err != nil {
		return nil, fmt.Errorf("pass: trust anchor: %w", err)
	}
	if err := checkText("name", name, 0, maxAnchorName); err != nil {
		return nil, fmt.Errorf("pass: trust anchor: %w", err)
	}
	pubs := make([]*PublicKey, len(roots))
	for i, r := range roots {
		if r == nil || r.pub == nil {
			return nil, errors.New("pass: trust anchor: nil root")
		}
		pubs[i] = r.pub
	}
	body := anchorBody(district, name, pubs)
	var out bytes.Buffer
	out.WriteString("# passgate trust anchor. Before trusting it, compare each fingerprint below\n")
	out.WriteString("# with the one the district reads out to you by another channel.\n")
	out.Write(body)
	for _, r := range roots {
		sig, err := r.sign(body)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "signature %x %x\n", r.pub.KID[:], sig)
	}
	return out.Bytes(), nil
}

// ParseAnchor reads a trust anchor file (outside input: bounded, strict)
// and verifies it: every fingerprint line matches its key and every root
// signed the canonical body. Comment lines (#) and empty lines are
// ignored, a CR before each LF and a leading byte-order mark are
// tolerated; anything else out of place is refused with ErrAnchor.
func ParseAnchor(b []byte) (*Anchor, error) {
	lines, err := anchorLines(b)
	if err != nil {
		return nil, err
	}
	a := &Anchor{}
	i, err := a.parseHead(lines)
	if err != nil {
		return nil, err
	}
	seen := make(map[KeyID]bool)
	if i, err = a.parseRoots(lines, i, seen); err != nil {
		return nil, err
	}
	if err := a.checkSignatures(lines[i:], seen); err != nil {
		return nil, err
	}
	return a, nil
}

// anchorLine is one meaningful line of an anchor file: its number, its
// first word and the rest.
type anchorLine struct {
	n         int
	key, rest string
}

func (l anchorLine) bad(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrAnchor, l.n, fmt.Sprintf(format, args...))
}

// anchorLines bounds the file and cuts it into lines, leaving out
// comments and empty lines.
func anchorLines(b []byte) ([]anchorLine, error) {
	if len(b) > MaxAnchorLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrAnchor, len(b), MaxAnchorLen)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	var lines []anchorLine
	for i, raw := range strings.Split(string(b), "\n") {
		s := strings.TrimSuffix(raw, "\r")
		if len(s) > maxAnchorLine {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrAnchor, i+1, maxAnchorLine)
		}
		if s == "" || s[0] == '#' {
			continue
		}
		if s == anchorHeader {
			lines = append(lines, anchorLine{n: i + 1, key: s})
			continue
		}
		k, rest, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: no value", ErrAnchor, i+1)
		}
		lines = append(lines, anchorLine{n: i + 1, key: k, rest: rest})
	}
	return lines, nil
}

// parseHead reads the header, the district and the optional name, and
// returns the index of the first line after them.
func (a *Anchor) parseHead(lines []anchorLine) (int, error) {
	if len(lines) == 0 || lines[0].key != anchorHeader {
		if len(lines) > 0 && lines[0].key == "passgate-trust-anchor" {
			return 0, lines[0].bad("version %q is not supported (this passgate reads version 1)", lines[0].rest)
		}
		return 0, fmt.Errorf("%w: it does not start with %q", ErrAnchor, anchorHeader)
	}
	i := 1
	if i >= len(lines) || lines[i].key != "district" {
		return 0, fmt.Errorf("%w: no district line after the header", ErrAnchor)
	}
	if err := checkText("district", lines[i].rest, 1, maxDistrictLen); err != nil {
		return 0, lines[i].bad("%v", err)
	}
	a.District = lines[i].rest
	i++
	if i < len(lines) && lines[i].key == "name" {
		if err := checkText("name", lines[i].rest, 1, maxAnchorName); err != nil {
			return 0, lines[i].bad("%v", err)
		}
		a.Name = lines[i].rest
		i++
	}
	return i, nil
}

// parseRoots reads the root lines from lines[i], each followed by its
// fingerprint, marks each root in seen as not yet signed, and returns the
// index of the first line after them.
func (a *Anchor) parseRoots(lines []anchorLine, i int, seen map[KeyID]bool) (int, error) {
	for i < len(lines) && lines[i].key == "root" {
		l := lines[i]
		if len(a.Roots) == maxAnchorRoots {
			return 0, l.bad("more than %d roots", maxAnchorRoots)
		}
		k, err := parseAnchorRoot(l)
		if err != nil {
			return 0, err
		}
		if seen[k.KID] {
			return 0, l.bad("root %s listed twice", k.KID)
		}
		seen[k.KID] = false
		i++
		if i >= len(lines) || lines[i].key != "fingerprint" {
			return 0, l.bad("root without a fingerprint line after it")
		}
		fp, err := lowerHex(lines[i].rest)
		if err != nil {
			return 0, lines[i].bad("fingerprint: %v", err)
		}
		if want := k.Fingerprint(); !bytes.Equal(fp, want[:]) {
			return 0, lines[i].bad("the fingerprint does not match the root key above it: the file is damaged")
		}
		a.Roots = append(a.Roots, k)
		i++
	}
	if len(a.Roots) == 0 {
		return 0, fmt.Errorf("%w: no root key", ErrAnchor)
	}
	return i, nil
}

// parseAnchorRoot reads the algorithm and key of one root line.
func parseAnchorRoot(l anchorLine) (*PublicKey, error) {
	algName, keyHex, ok := strings.Cut(l.rest, " ")
	if !ok {
		return nil, l.bad("root needs an algorithm and a key")
	}
	var alg Alg
	switch algName {
	case AlgEdDSA.String():
		alg = AlgEdDSA
	case AlgES256.String():
		alg = AlgES256
	default:
		return nil, l.bad("algorithm %q is not EdDSA or ES256", algName)
	}
	raw, err := lowerHex(keyHex)
	if err != nil {
		return nil, l.bad("key: %v", err)
	}
	k, err := ParsePublicKey(alg, raw)
	if err != nil {
		return nil, l.bad("%v", err)
	}
	return k, nil
}

// checkSignatures verifies that the remaining lines are signatures, one
// by each root in seen and by no one else, over the canonical body.
func (a *Anchor) checkSignatures(lines []anchorLine, seen map[KeyID]bool) error {
	body := anchorBody(a.District, a.Name, a.Roots)
	for _, l := range lines {
		if l.key != "signature" {
			return l.bad("unexpected %q", l.key)
		}
		kidHex, sigHex, ok := strings.Cut(l.rest, " ")
		if !ok {
			return l.bad("signature needs a key id and a signature")
		}
		kidRaw, err := lowerHex(kidHex)
		if err != nil || len(kidRaw) != len(KeyID{}) {
			return l.bad("key id is not %d bytes of hex", len(KeyID{}))
		}
		var kid KeyID
		copy(kid[:], kidRaw)
		signed, listed := seen[kid]
		switch {
		case !listed:
			return l.bad("signature by %s, which is not a root of the file", kid)
		case signed:
			return l.bad("second signature by %s", kid)
		}
		sig, err := lowerHex(sigHex)
		if err != nil {
			return l.bad("signature: %v", err)
		}
		var root *PublicKey
		for _, r := range a.Roots {
			if r.KID == kid {
				root = r
			}
		}
		if !root.Verify(body, sig) {
			return l.bad("signature by %s does not verify: the file is damaged or altered", kid)
		}
		seen[kid] = true
	}
	for _, r := range a.Roots {
		if !seen[r.KID] {
			return fmt.Errorf("%w: root %s did not sign the file", ErrAnchor, r.KID)
		}
	}
	return nil
}

// lowerHex decodes lower-case hexadecimal only: the file has one form.
func lowerHex(s string) ([]byte, error) {
	if s == "" || strings.ToLower(s) != s {
		return nil, errors.New("not lower-case hexadecimal")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("not lower-case hexadecimal")
	}
	return b, nil
}
