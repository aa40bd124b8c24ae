package districtsync

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"passgate/pass"
)

func testBundleKey(tb testing.TB, alg pass.Alg) (*pass.PrivateKey, *BundleSigner) {
	tb.Helper()
	k, err := pass.GenerateKey(alg, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewBundleSigner(k)
	if err != nil {
		tb.Fatal(err)
	}
	return k, s
}

func testUpPayload() *UpPayload {
	return &UpPayload{
		Now:     1764000000000,
		Backlog: 3,
		Pushes: []PushRequest{{
			Now: 1764000000000,
			Scans: &ScanBatch{Epoch: bytes.Repeat([]byte{7}, 16), From: 1, Records: []ScanRecord{
				{Seq: 1, At: 1764000000001, Source: "gate-1", Decision: "allow", Reason: "ok"},
				{Seq: 2, At: 1764000000002, Source: "gate-1", Decision: "deny", Reason: "revoked", PassID: bytes.Repeat([]byte{1}, 12)},
			}},
			Events: &EventBatch{Epoch: bytes.Repeat([]byte{7}, 16), From: 1, Records: []EventRecord{
				{Seq: 1, Kind: "status", At: 1764000000003, Body: json.RawMessage(`{"to_color":2}`)},
			}},
		}},
		Feed: PullRequest{RevocationsAfter: 4, PolicyVersion: 9},
	}
}

func testUpHeader() BundleHeader {
	return BundleHeader{Direction: DirectionUp, District: "d-1", Appliance: "gate-a", Seq: 1, Created: 1764000000000}
}

func encodeTestBundle(tb testing.TB, h BundleHeader, p any, s *BundleSigner) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := EncodeBundle(&buf, h, p, s); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestBundle_Format(t *testing.T) {
	t.Parallel()
	for _, alg := range []pass.Alg{pass.AlgEdDSA, pass.AlgES256} {
		t.Run(alg.String(), func(t *testing.T) {
			_, s := testBundleKey(t, alg)
			want := testUpPayload()
			raw := encodeTestBundle(t, testUpHeader(), want, s)

			b, err := ReadBundle(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if b.Header.Seq != 1 || b.Header.Appliance != "gate-a" || b.Header.District != "d-1" ||
				b.Header.Version != BundleVersion || !bytes.Equal(b.Header.KID, s.Public().KID[:]) {
				t.Fatalf("header %+v", b.Header)
			}
			if _, err := b.Up(); !errors.Is(err, ErrBundleUnverified) {
				t.Fatalf("payload before Verify: %v", err)
			}
			if err := b.Verify(s.Public()); err != nil {
				t.Fatal(err)
			}
			got, err := b.Up()
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) {
				t.Fatalf("payload\n got %s\nwant %s", g, w)
			}
			if _, err := b.Down(); !errors.Is(err, ErrBundleMalformed) {
				t.Fatalf("up bundle read as down: %v", err)
			}
		})
	}
}

func TestBundle_WrongKey(t *testing.T) {
	t.Parallel()
	_, s := testBundleKey(t, pass.AlgEdDSA)
	_, other := testBundleKey(t, pass.AlgEdDSA)
	raw := encodeTestBundle(t, testUpHeader(), testUpPayload(), s)
	b, err := ReadBundle(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(other.Public()); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("verify with another key: %v", err)
	}
	if err := b.Verify(nil); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("verify with no key: %v", err)
	}
	if _, err := b.Up(); !errors.Is(err, ErrBundleUnverified) {
		t.Fatalf("payload after a failed Verify: %v", err)
	}
}

// TestBundle_Hostile feeds damaged bundles to the reader and verifier:
// each must be refused with the error that names the damage.
func TestBundle_Hostile(t *testing.T) {
	t.Parallel()
	_, s := testBundleKey(t, pass.AlgEdDSA)
	good := encodeTestBundle(t, testUpHeader(), testUpPayload(), s)
	hlen := int(binary.BigEndian.Uint16(good[10:]))
	plenAt := bundlePrefixLen + hlen

	// readAndVerify is what an importer does.
	readAndVerify := func(raw []byte) error {
		b, err := ReadBundle(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		if err := b.Verify(s.Public()); err != nil {
			return err
		}
		_, err = b.Up()
		return err
	}

	t.Run("TruncatedAtEveryLength", func(t *testing.T) {
		for n := 0; n < len(good); n++ {
			err := readAndVerify(good[:n])
			if !errors.Is(err, ErrBundleTruncated) {
				t.Fatalf("cut at %d of %d: %v, want truncated", n, len(good), err)
			}
		}
	})
	t.Run("FlippedByteAnywhere", func(t *testing.T) {
		for i := range good {
			bad := bytes.Clone(good)
			bad[i] ^= 0x20
			if err := readAndVerify(bad); err == nil {
				t.Fatalf("byte %d flipped: accepted", i)
			}
		}
	})
	t.Run("FlippedPayloadByteIsSignature", func(t *testing.T) {
		bad := bytes.Clone(good)
		bad[plenAt+4+10] ^= 1
		if err := readAndVerify(bad); !errors.Is(err, ErrBundleSignature) {
			t.Fatalf("got %v", err)
		}
	})
	for _, tc := range damagedBundles(t, good) {
		t.Run(tc.name, func(t *testing.T) {
			err := readAndVerify(tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// damagedBundle is a damaged copy of a good bundle and the refusal it
// must meet.
type damagedBundle struct {
	name string
	raw  []byte
	want error
}

// damagedBundles damages good in its prefix, its sizes and its header.
func damagedBundles(t *testing.T, good []byte) []damagedBundle {
	hlen := int(binary.BigEndian.Uint16(good[10:]))
	plenAt := bundlePrefixLen + hlen
	setHeader := func(mod func(h map[string]any)) []byte {
		var h map[string]any
		if err := json.Unmarshal(good[bundlePrefixLen:bundlePrefixLen+hlen], &h); err != nil {
			t.Fatal(err)
		}
		mod(h)
		head, _ := json.Marshal(h)
		out := append([]byte(nil), good[:10]...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(head)))
		out = append(out, head...)
		return append(out, good[plenAt:]...)
	}
	return []damagedBundle{
		{"Empty", nil, ErrBundleTruncated},
		{"WrongMagic", append([]byte("PKZIP\x03\x04\x00"), good[8:]...), ErrBundleMalformed},
		{"TextFile", []byte("hello"), ErrBundleMalformed},
		{"WrongVersion", func() []byte { b := bytes.Clone(good); b[9] = 2; return b }(), ErrBundleVersion},
		{"HeaderSizeZero", func() []byte { b := bytes.Clone(good); b[10], b[11] = 0, 0; return b }(), ErrBundleMalformed},
		{"HeaderSizeHuge", func() []byte { b := bytes.Clone(good); b[10], b[11] = 0xff, 0xff; return b }(), ErrBundleMalformed},
		{"HeaderNotJSON", func() []byte { b := bytes.Clone(good); b[bundlePrefixLen] = '['; return b }(), ErrBundleMalformed},
		{"PayloadSizeHuge", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[plenAt:], MaxBundlePayload+1)
			return b
		}(), ErrBundleTooLarge},
		{"PayloadSizeZero", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[plenAt:], 0)
			return b
		}(), ErrBundleMalformed},
		{"TrailingBytes", append(bytes.Clone(good), 0), ErrBundleMalformed},
		{"Appended", append(bytes.Clone(good), good...), ErrBundleMalformed},
		{"BadDirection", setHeader(func(h map[string]any) { h["direction"] = "sideways" }), ErrBundleMalformed},
		{"NoDistrict", setHeader(func(h map[string]any) { h["district"] = "" }), ErrBundleMalformed},
		{"ControlInName", setHeader(func(h map[string]any) { h["appliance"] = "gate\x1b[2J" }), ErrBundleMalformed},
		{"SeqZero", setHeader(func(h map[string]any) { h["seq"] = 0 }), ErrBundleMalformed},
		{"UnknownField", setHeader(func(h map[string]any) { h["extra"] = 1 }), ErrBundleMalformed},
		{"ShortKID", setHeader(func(h map[string]any) { h["kid"] = "AAEC" }), ErrBundleMalformed},
		// A header changed after signing (a replayed bundle renumbered,
		// or one readdressed to another district) fails the signature.
		{"SeqRaised", setHeader(func(h map[string]any) { h["seq"] = 99 }), ErrBundleSignature},
		{"DistrictChanged", setHeader(func(h map[string]any) { h["district"] = "d-2" }), ErrBundleSignature},
		{"ApplianceChanged", setHeader(func(h map[string]any) { h["appliance"] = "gate-b" }), ErrBundleSignature},
		{"DirectionChanged", setHeader(func(h map[string]any) { h["direction"] = DirectionDown }), ErrBundleSignature},
	}
}

// TestBundle_SignedGarbage: a payload that is signed but is not gzip'd
// JSON (a bug or a compromised signer) is still refused, not half used.
func TestBundle_SignedGarbage(t *testing.T) {
	_, s := testBundleKey(t, pass.AlgEdDSA)
	defer func(n int64) { bundlePlainLimit = n }(bundlePlainLimit)
	bundlePlainLimit = 1 << 20
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"NotGzip", []byte("plain text"), ErrBundleMalformed},
		{"GzipNotJSON", gz(t, []byte("not json")), ErrBundleMalformed},
		{"TwoValues", gz(t, []byte(`{"now_ms":1} {"now_ms":2}`)), ErrBundleMalformed},
		{"Bomb", gz(t, append([]byte(`{"now_ms":1,"pushes":[`), bytes.Repeat([]byte("{},"), 1<<20)...)), ErrBundleTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := signRaw(t, testUpHeader(), tc.payload, s)
			b, err := ReadBundle(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Verify(s.Public()); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Up(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func gz(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// signRaw builds a bundle around an arbitrary payload.
func signRaw(tb testing.TB, h BundleHeader, payload []byte, s *BundleSigner) []byte {
	tb.Helper()
	h.KID = s.Public().KID[:]
	head, _ := json.Marshal(&h)
	out := []byte(bundleMagic)
	out = binary.BigEndian.AppendUint16(out, BundleVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(head)))
	out = append(out, head...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(payload)))
	out = append(out, payload...)
	sig, err := s.sign(sigMessage(out))
	if err != nil {
		tb.Fatal(err)
	}
	return append(out, sig...)
}

func TestBundle_EncodeRefuses(t *testing.T) {
	t.Parallel()
	_, s := testBundleKey(t, pass.AlgEdDSA)
	h := testUpHeader()
	if err := EncodeBundle(&bytes.Buffer{}, h, &DownPayload{}, s); err == nil {
		t.Fatal("down payload in an up bundle accepted")
	}
	h.Appliance = strings.Repeat("x", 65)
	if err := EncodeBundle(&bytes.Buffer{}, h, testUpPayload(), s); !errors.Is(err, ErrBundleMalformed) {
		t.Fatalf("long appliance name: %v", err)
	}
}

func TestParseBundleKey(t *testing.T) {
	t.Parallel()
	k, _ := testBundleKey(t, pass.AlgEdDSA)
	enc, _ := k.MarshalBinary()
	for _, b := range [][]byte{enc, enc[1:], append(bytes.Clone(enc[1:]), k.Public().Raw...)} {
		got, err := ParseBundleKey(b)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if got.Public().KID != k.Public().KID {
			t.Fatalf("%d bytes: another key", len(b))
		}
	}
	if _, err := ParseBundleKey(enc[:20]); err == nil {
		t.Fatal("20 bytes accepted")
	}
}

// FuzzReadBundle: the reader never panics, and whatever it accepts
// either fails verification or decodes (a fuzzer cannot forge the
// signature, so only the seeds reach the decoder).
func FuzzReadBundle(f *testing.F) {
	_, s := testBundleKey(f, pass.AlgEdDSA)
	good := encodeTestBundle(f, testUpHeader(), testUpPayload(), s)
	f.Add(good)
	dh := testUpHeader()
	dh.Direction = DirectionDown
	f.Add(encodeTestBundle(f, dh, &DownPayload{Now: 1, Feed: PullResponse{Revocations: []RevocationRecord{{Seq: 1, Kind: 2, Target: make([]byte, 12)}}},
		ScanMarks: []Mark{{Epoch: make([]byte, 16), Mark: 3}}, UpSeq: 2}, s))
	f.Add(good[:len(good)/2])
	f.Add([]byte(bundleMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ReadBundle(bytes.NewReader(raw))
		if err != nil {
			return
		}
		if err := b.Header.check(); err != nil {
			t.Fatalf("accepted a header that fails its check: %v", err)
		}
		if err := b.Verify(s.Public()); err != nil {
			return
		}
		_, _ = b.Up()
		_, _ = b.Down()
	})
}
