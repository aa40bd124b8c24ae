package check_test

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"passgate/check"
	"passgate/district"
	"passgate/internal/checktest"
	"passgate/pass"
	"passgate/store"
)

// signerFor certifies a new issuer key of alg under root.
func signerFor(f *checktest.District, root *pass.PrivateKey, alg pass.Alg, nbf, naf time.Time) *pass.Signer {
	f.T.Helper()
	k, err := pass.GenerateKey(alg, rand.Reader)
	if err != nil {
		f.T.Fatal(err)
	}
	cert, err := pass.IssueCert(root, pass.Cert{Key: k.Public(), District: f.ID, Appliance: "other", NotBefore: nbf, NotAfter: naf})
	if err != nil {
		f.T.Fatal(err)
	}
	s, err := pass.NewSigner(k, cert)
	if err != nil {
		f.T.Fatal(err)
	}
	return s
}

func setPolicy(f *checktest.District, mod func(*store.Policy)) {
	f.T.Helper()
	p := store.DefaultPolicy()
	if mod != nil {
		mod(&p)
	}
	if err := f.DB.ChangePolicy(f.Ctx, &p, "test"); err != nil {
		f.T.Fatal(err)
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		f.T.Fatal(err)
	}
}

// The layers of a pass, rebuilt independently of package pass from the
// format description, so hostile inputs can target one layer.

const b45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func base45(b []byte) string {
	var sb strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])*256 + int(b[i+1])
		sb.WriteByte(b45[n%45])
		sb.WriteByte(b45[n/45%45])
		sb.WriteByte(b45[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		sb.WriteByte(b45[n%45])
		sb.WriteByte(b45[n/45])
	}
	return sb.String()
}

func unbase45(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(s); i += 3 {
		v := func(j int) int { return strings.IndexByte(b45, s[j]) }
		if i+2 < len(s) {
			n := v(i) + v(i+1)*45 + v(i+2)*2025
			out = append(out, byte(n>>8), byte(n))
		} else {
			out = append(out, byte(v(i)+v(i+1)*45))
		}
	}
	return out
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func inflate(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wrap(cose []byte) string { return pass.Prefix + base45(deflate(cose)) }

// coseMsg is a COSE_Sign1 opened for tampering.
type coseMsg struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int]cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

func open(t testing.TB, text string) coseMsg {
	t.Helper()
	raw := inflate(t, unbase45(t, strings.TrimPrefix(text, pass.Prefix)))
	var tag cbor.RawTag
	if err := cbor.Unmarshal(raw, &tag); err != nil || tag.Number != 18 {
		t.Fatalf("not a tagged COSE_Sign1: %v", err)
	}
	var m coseMsg
	if err := cbor.Unmarshal(tag.Content, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t testing.TB, m coseMsg) string {
	return wrap(mustCBOR(t, cbor.Tag{Number: 18, Content: m}))
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// checkCase is one input the checker must decide, with the policy and
// district state it meets.
type checkCase struct {
	name   string
	input  func() string
	policy func(*store.Policy)
	setup  func()
	want   check.Reason
}

// checkCases lists, in order, every case TestCheck_HostileAndPolicy runs
// against f.
func checkCases(t *testing.T, f *checktest.District) []checkCase {
	return append(hostileInputCases(t, f), issuerAndPolicyCases(t, f)...)
}

// hostileInputCases damage a pass layer by layer: text, zlib, CBOR,
// COSE and signatures.
func hostileInputCases(t *testing.T, f *checktest.District) []checkCase {
	good := f.Sign(f.Claims())
	gm := open(t, good)
	var certBytes []byte
	if err := cbor.Unmarshal(gm.Unprotected[-65537], &certBytes); err != nil {
		t.Fatalf("certificate header: %v", err)
	}
	nested := bytes.Repeat([]byte{0x81}, 10000)
	nested = append(nested, 0x00)
	bomb := deflate(make([]byte, 2<<20)) // fits the length cap, inflates far past the inflate cap
	badSum := deflate(mustCBOR(t, cbor.Tag{Number: 18, Content: gm}))
	badSum[len(badSum)-1] ^= 0xff

	return []checkCase{
		{name: "empty", input: func() string { return "" }, want: check.ReasonNotAPass},
		{name: "whitespace", input: func() string { return " \t\r\n " }, want: check.ReasonNotAPass},
		{name: "1MB of text", input: func() string { return strings.Repeat("A", 1<<20) }, want: check.ReasonTooLong},
		{name: "1MB behind the prefix", input: func() string { return pass.Prefix + strings.Repeat("0", 1<<20) }, want: check.ReasonTooLong},
		{name: "invalid UTF-8", input: func() string { return "\xff\xfe\xfd" }, want: check.ReasonNotAPass},
		{name: "invalid UTF-8 after prefix", input: func() string { return pass.Prefix + "\xff\xfe\xfd" }, want: check.ReasonMalformed},
		{name: "EU DCC prefix", input: func() string { return "HC1:" + strings.TrimPrefix(good, pass.Prefix) }, want: check.ReasonNotAPass},
		{name: "lower-case prefix", input: func() string { return strings.ToLower(pass.Prefix) + strings.TrimPrefix(good, pass.Prefix) }, want: check.ReasonNotAPass},
		{name: "a URL", input: func() string { return "https://example.org/" }, want: check.ReasonNotAPass},
		{name: "prefix only", input: func() string { return pass.Prefix }, want: check.ReasonMalformed},
		{name: "lower-case Base45", input: func() string { return pass.Prefix + "abc" }, want: check.ReasonMalformed},
		{name: "NUL inside", input: func() string { return good[:20] + "\x00" + good[20:] }, want: check.ReasonMalformed},
		{name: "overflowing triplet", input: func() string { return pass.Prefix + ":::" }, want: check.ReasonMalformed},
		{name: "overflowing pair", input: func() string { return pass.Prefix + "::" }, want: check.ReasonMalformed},
		{name: "dangling character", input: func() string { return pass.Prefix + "A" }, want: check.ReasonMalformed},
		{name: "trailing character not Base45", input: func() string { return good + "=" }, want: check.ReasonMalformed},
		{name: "not zlib", input: func() string { return pass.Prefix + base45([]byte("hello, world")) }, want: check.ReasonMalformed},
		{name: "truncated zlib", input: func() string {
			z := unbase45(t, strings.TrimPrefix(good, pass.Prefix))
			return pass.Prefix + base45(z[:len(z)/2])
		}, want: check.ReasonMalformed},
		{name: "zlib bomb", input: func() string { return pass.Prefix + base45(bomb) }, want: check.ReasonMalformed},
		{name: "zlib bad checksum", input: func() string { return pass.Prefix + base45(badSum) }, want: check.ReasonMalformed},
		{name: "invalid CBOR", input: func() string { return wrap([]byte{0xff, 0x00}) }, want: check.ReasonMalformed},
		{name: "deeply nested CBOR", input: func() string { return wrap(nested) }, want: check.ReasonMalformed},
		{name: "wrong COSE tag", input: func() string { return wrap(mustCBOR(t, cbor.Tag{Number: 98, Content: gm})) }, want: check.ReasonMalformed},
		{name: "untagged", input: func() string { return wrap(mustCBOR(t, gm)) }, want: check.ReasonMalformed},
		{name: "array of three", input: func() string {
			return wrap(mustCBOR(t, cbor.Tag{Number: 18, Content: []any{gm.Protected, gm.Unprotected, gm.Payload}}))
		}, want: check.ReasonMalformed},
		{name: "trailing bytes after COSE", input: func() string {
			return wrap(append(mustCBOR(t, cbor.Tag{Number: 18, Content: gm}), 0x00))
		}, want: check.ReasonMalformed},
		{name: "missing algorithm", input: func() string {
			m := gm
			m.Protected = mustCBOR(t, map[int]any{4: f.Issuer.Public().KID[:]})
			return seal(t, m)
		}, want: check.ReasonMalformed},
		{name: "unsupported algorithm", input: func() string {
			m := gm
			m.Protected = mustCBOR(t, map[int]any{1: -257, 4: f.Issuer.Public().KID[:]})
			return seal(t, m)
		}, want: check.ReasonMalformed},
		{name: "flipped bit in payload", input: func() string {
			c := f.Claims()
			m := open(t, f.Sign(c))
			i := bytes.Index(m.Payload, c.ID[:])
			if i < 0 {
				t.Fatal("pass id not found in payload")
			}
			m.Payload = flip(m.Payload, i+3)
			return seal(t, m)
		}, want: check.ReasonBadSignature},
		{name: "flipped bit in signature", input: func() string {
			m := gm
			m.Signature = flip(gm.Signature, 10)
			return seal(t, m)
		}, want: check.ReasonBadSignature},
		{name: "flipped bit in certificate signature", input: func() string {
			m := gm
			m.Unprotected = map[int]cbor.RawMessage{-65537: mustCBOR(t, flip(certBytes, len(certBytes)-5))}
			return seal(t, m)
		}, want: check.ReasonBadSignature},
		{name: "no certificate", input: func() string {
			m := gm
			m.Unprotected = map[int]cbor.RawMessage{}
			return seal(t, m)
		}, want: check.ReasonUnknownIssuer},
	}
}

// issuerAndPolicyCases are well-formed passes the issuer, the pass's
// validity or the policy decide.
func issuerAndPolicyCases(t *testing.T, f *checktest.District) []checkCase {
	good := f.Sign(f.Claims())
	otherRoot, _ := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	year := 365 * 24 * time.Hour
	return []checkCase{
		{name: "certificate from another root", input: func() string {
			return checktest.SignWith(t, signerFor(f, otherRoot, pass.AlgEdDSA, f.Now.Add(-time.Hour), f.Now.Add(year)), f.Claims())
		}, want: check.ReasonUnknownIssuer},
		{name: "expired issuer certificate", input: func() string {
			return checktest.SignWith(t, signerFor(f, f.Root, pass.AlgEdDSA, f.Now.Add(-2*year), f.Now.Add(-year)), f.Claims())
		}, want: check.ReasonIssuerExpired},
		{name: "issuer certificate not yet valid", input: func() string {
			return checktest.SignWith(t, signerFor(f, f.Root, pass.AlgEdDSA, f.Now.Add(time.Hour*24), f.Now.Add(year)), f.Claims())
		}, want: check.ReasonIssuerExpired},
		{name: "revoked issuer key", setup: func() {
			mustRevoke(t, f, store.RevokeIssuer, f.Issuer.Public().KID[:])
		}, input: func() string { return f.Sign(f.Claims()) }, want: check.ReasonIssuerRevoked},
		{name: "ES256 issuer", input: func() string {
			return checktest.SignWith(t, signerFor(f, f.Root, pass.AlgES256, f.Now.Add(-time.Hour), f.Now.Add(year)), f.Claims())
		}, want: check.ReasonOK},
		{name: "expired pass", input: func() string {
			c := f.Claims()
			c.IssuedAt, c.ExpiresAt = f.Now.Add(-48*time.Hour), f.Now.Add(-24*time.Hour)
			return f.Sign(c)
		}, want: check.ReasonExpired},
		{name: "expired within clock skew", input: func() string {
			c := f.Claims()
			c.IssuedAt, c.ExpiresAt = f.Now.Add(-24*time.Hour), f.Now.Add(-time.Minute)
			return f.Sign(c)
		}, want: check.ReasonOK},
		{name: "not yet valid", input: func() string {
			c := f.Claims()
			c.IssuedAt, c.ExpiresAt = f.Now.Add(time.Hour), f.Now.Add(25*time.Hour)
			return f.Sign(c)
		}, want: check.ReasonNotYetValid},
		{name: "revoked subject", input: func() string {
			c := f.Claims()
			mustRevoke(t, f, store.RevokeSubject, c.Subject[:])
			return f.Sign(c)
		}, want: check.ReasonRevoked},
		{name: "revoked pass", input: func() string {
			c := f.Claims()
			mustRevoke(t, f, store.RevokePass, c.ID[:])
			return f.Sign(c)
		}, want: check.ReasonRevoked},
		{name: "red", input: func() string { c := f.Claims(); c.Color = pass.Red; return f.Sign(c) }, want: check.ReasonStatusRed},
		{name: "yellow", input: func() string { c := f.Claims(); c.Color = pass.Yellow; return f.Sign(c) }, want: check.ReasonStatusYellow},
		{name: "yellow allowed by policy", policy: func(p *store.Policy) { p.Colors = []pass.Color{pass.Green, pass.Yellow} },
			input: func() string { c := f.Claims(); c.Color = pass.Yellow; return f.Sign(c) }, want: check.ReasonOK},
		{name: "test missing", input: func() string { c := f.Claims(); c.TestedAt = time.Time{}; return f.Sign(c) }, want: check.ReasonTestMissing},
		{name: "test missing, none required", policy: func(p *store.Policy) { p.MaxTestAge = 0 },
			input: func() string { c := f.Claims(); c.TestedAt = time.Time{}; return f.Sign(c) }, want: check.ReasonOK},
		{name: "test too old", input: func() string { c := f.Claims(); c.TestedAt = f.Now.Add(-73 * time.Hour); return f.Sign(c) }, want: check.ReasonTestTooOld},
		{name: "test too old for 48h", policy: func(p *store.Policy) { p.MaxTestAge = 48 * time.Hour },
			input: func() string { c := f.Claims(); c.TestedAt = f.Now.Add(-49 * time.Hour); return f.Sign(c) }, want: check.ReasonTestTooOld},
		{name: "doses missing", policy: func(p *store.Policy) { p.MinDoses = 3 },
			input: func() string { return f.Sign(f.Claims()) }, want: check.ReasonDosesMissing},
		{name: "paper refused", policy: func(p *store.Policy) { p.AcceptPaper = false },
			input: func() string { c := f.Claims(); c.Kind = pass.Paper; return f.Sign(c) }, want: check.ReasonPaperRefused},
		{name: "valid", input: func() string { return good }, want: check.ReasonOK},
		{name: "valid with CRLF", input: func() string { return f.Sign(f.Claims()) + "\r\n" }, want: check.ReasonOK},
	}
}

func TestCheck_HostileAndPolicy(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	cases := checkCases(t, f)
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for i := 0; i < len(cases); i++ {
		tt := cases[i]
		t.Run(tt.name, func(t *testing.T) {
			setPolicy(f, tt.policy)
			if tt.setup != nil {
				tt.setup()
			}
			in := tt.input()
			if err := f.Checker.Refresh(f.Ctx); err != nil {
				t.Fatal(err)
			}
			d, err := f.Checker.Check(f.Ctx, "test", in)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if d.Reason != tt.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tt.want)
			}
			if want := tt.want == check.ReasonOK; d.Allowed() != want {
				t.Fatalf("allowed = %v with reason %s", d.Allowed(), d.Reason)
			}
			if d.ScanID <= 0 {
				t.Fatalf("scan not logged: id %d", d.ScanID)
			}
		})
		if t.Failed() {
			// A revoked issuer would taint every later case.
			break
		}
		if tt.want == check.ReasonIssuerRevoked {
			// Start the remaining cases from a clean district.
			f = checktest.New(t)
			cases = checkCases(t, f)
		}
	}
}

func mustRevoke(t testing.TB, f *checktest.District, kind store.RevocationKind, target []byte) {
	t.Helper()
	r := &store.Revocation{Kind: kind, Target: bytes.Clone(target), Reason: "test"}
	if kind == store.RevokeSubject {
		r.Before = f.Now
	}
	if err := f.DB.CreateRevocation(f.Ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestCheck_Repeat(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	text := f.Sign(f.Claims())
	first, err := f.Checker.Check(f.Ctx, "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	if first.Repeat {
		t.Fatal("first check flagged as repeat")
	}
	f.Now = f.Now.Add(time.Minute)
	second, err := f.Checker.Check(f.Ctx, "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Repeat || !second.Allowed() {
		t.Fatalf("second check: repeat=%v allowed=%v", second.Repeat, second.Allowed())
	}

	t.Run("AcrossProcesses", func(t *testing.T) {
		// A new checker (another process, e.g. the CLI) learns of the
		// earlier check from the log.
		c2, err := check.New(f.Ctx, check.Config{DB: f.DB, Now: func() time.Time { return f.Now.Add(time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c2.Check(f.Ctx, "cli", text)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Repeat {
			t.Fatal("repeat not found through the log")
		}
	})

	t.Run("AfterWindow", func(t *testing.T) {
		f.Now = f.Now.Add(10 * time.Minute)
		d, err := f.Checker.Check(f.Ctx, "gate-1", text)
		if err != nil {
			t.Fatal(err)
		}
		if d.Repeat {
			t.Fatal("flagged as repeat after the repeat window")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		text := f.Sign(f.Claims())
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := f.Checker.Check(f.Ctx, "gate-2", text)
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Repeat {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if firsts != 1 {
			t.Fatalf("%d checks saw the pass first, want exactly 1", firsts)
		}
	})
}

func TestCheck_LogHoldsNoPersonalData(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	c := f.Claims()
	d, err := f.Checker.Check(f.Ctx, "gate-1", f.Sign(c))
	if err != nil {
		t.Fatal(err)
	}
	scans, err := f.DB.FindScans(f.Ctx, store.ScanFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(scans) != 1 {
		t.Fatalf("%d scans logged, want 1", len(scans))
	}
	s := scans[0]
	if s.ID != d.ScanID || s.PassID != c.ID || s.Subject != c.Subject || s.Source != "gate-1" ||
		s.Decision != string(check.Allow) || s.Reason != string(check.ReasonOK) || s.KID != f.Issuer.Public().KID {
		t.Fatalf("logged scan %+v does not match decision %+v", s, d)
	}
}

func TestCheck_StatusChangeVoidsEarlierPasses(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	old, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230", TestedAt: f.Now.Add(-time.Hour), Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	d := f.Checker.Evaluate(old.Text, f.Now)
	if !d.Allowed() {
		t.Fatalf("fresh pass denied: %s", d.Reason)
	}
	// Red, then green again within the same second: the old pass stays
	// void, the pass issued after the change is valid.
	if _, err := district.SetStatus(f.Ctx, f.DB, "610113199001011230", pass.Red, "positive test", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(f.Ctx, f.DB, "610113199001011230", pass.Green, "retest negative", "test"); err != nil {
		t.Fatal(err)
	}
	renewed, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{IDNumber: "610113199001011230", Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		t.Fatal(err)
	}
	later := f.Now.Add(2 * time.Second)
	if d := f.Checker.Evaluate(old.Text, later); d.Reason != check.ReasonRevoked {
		t.Fatalf("old pass: %s, want revoked", d.Reason)
	}
	if d := f.Checker.Evaluate(renewed.Text, later); !d.Allowed() {
		t.Fatalf("renewed pass: %s, want ok", d.Reason)
	}
}

func TestCheck_TrustsAnotherDistrictsRoot(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	other, _ := pass.GenerateKey(pass.AlgES256, rand.Reader)
	own := f.ID
	f.ID = "D-other" // signerFor and claims speak for the other district
	text := checktest.SignWith(t, signerFor(f, other, pass.AlgEdDSA, f.Now.Add(-time.Hour), f.Now.Add(time.Hour*24*30)), f.Claims())
	f.ID = own
	// The other district's root certifying an issuer of this district.
	forged := checktest.SignWith(t, signerFor(f, other, pass.AlgEdDSA, f.Now.Add(-time.Hour), f.Now.Add(time.Hour*24*30)), f.Claims())
	if d := f.Checker.Evaluate(text, f.Now); d.Reason != check.ReasonUnknownIssuer {
		t.Fatalf("before trusting: %s", d.Reason)
	}
	pub := other.Public()
	if err := f.DB.CreateKey(f.Ctx, &store.Key{KID: pub.KID, Role: store.RoleRoot, Alg: pub.Alg, Public: pub.Raw, District: "D-other", CreatedAt: f.Now}); err != nil {
		t.Fatal(err)
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.Checker.Evaluate(text, f.Now); !d.Allowed() {
		t.Fatalf("after trusting: %s", d.Reason)
	}
	if d := f.Checker.Evaluate(forged, f.Now); d.Reason != check.ReasonUnknownIssuer {
		t.Fatalf("another district's root certifying this district: %s", d.Reason)
	}
}

func TestCheck_Subscribe(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	ch, stop := f.Checker.Subscribe(4)
	d, err := f.Checker.Check(f.Ctx, "gate-1", "garbage")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got.ScanID != d.ScanID {
			t.Fatalf("got scan %d, want %d", got.ScanID, d.ScanID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no decision published")
	}
	stop()
	stop() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel open after stop")
	}
}

func TestCheck_ClosedStoreIsAnError(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	f.DB.Close()
	_, err := f.Checker.Check(f.Ctx, "gate-1", f.Sign(f.Claims()))
	if err == nil {
		t.Fatal("check succeeded on a closed store: a check that was not logged must fail")
	}
}

// Once the repeat set is complete it answers alone; a check logged by
// another process makes it consult the log again.
func TestCheck_RepeatAfterWarmup(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	// Well past the first window: the set now knows every check.
	f.Now = time.Now().Add(time.Hour)
	c := f.Claims()
	c.IssuedAt, c.ExpiresAt, c.TestedAt = f.Now.Add(-time.Minute), f.Now.Add(time.Hour), f.Now.Add(-time.Hour)
	text := f.Sign(c)
	if d, _ := f.Checker.Check(f.Ctx, "gate-1", text); d.Repeat {
		t.Fatal("first check flagged as repeat")
	}
	if d, _ := f.Checker.Check(f.Ctx, "gate-1", text); !d.Repeat {
		t.Fatal("second check not flagged")
	}

	other, err := store.Open(f.Ctx, filepath.Dir(f.DB.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c2 := c
	if _, err := rand.Read(c2.ID[:]); err != nil {
		t.Fatal(err)
	}
	if err := other.LogScan(f.Ctx, &store.Scan{At: f.Now, Source: "cli", Decision: string(check.Allow), Reason: "ok", PassID: c2.ID, Subject: c2.Subject}); err != nil {
		t.Fatal(err)
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		t.Fatal(err)
	}
	f.Now = f.Now.Add(time.Minute)
	if d, _ := f.Checker.Check(f.Ctx, "gate-1", f.Sign(c2)); !d.Repeat {
		t.Fatal("a check logged by another process was not seen as a repeat")
	}
}

// A pass dated ahead within the clock tolerance must not outlive a status
// change: the cutoff is widened by the tolerance at every checker.
func TestCheck_StatusChangeVoidsPassDatedAhead(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	const id = "610113199001011230"
	if _, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{Name: "张三明", IDNumber: id, Doses: -1, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	c := f.Claims()
	c.Subject = pass.Pseudonym(f.PseudonymKey, id)
	c.IssuedAt = f.Now.Add(240 * time.Second)
	c.ExpiresAt = c.IssuedAt.Add(24 * time.Hour)
	ahead := f.Sign(c)
	if d := f.Checker.Evaluate(ahead, f.Now); !d.Allowed() {
		t.Fatalf("pass dated 240 s ahead, before the change: %s, want ok", d.Reason)
	}
	if _, err := district.SetStatus(f.Ctx, f.DB, id, pass.Red, "positive test", "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{f.Now, f.Now.Add(time.Hour)} {
		if d := f.Checker.Evaluate(ahead, at); d.Reason != check.ReasonRevoked {
			t.Fatalf("pass dated 240 s ahead, checked at %s after the holder turned red: %s, want revoked", at.Sub(f.Now), d.Reason)
		}
	}
	// A pass issued right after the change is dated past the widened
	// cutoff, and checkers within the tolerance accept it.
	renewed, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{IDNumber: id, Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Claims.IssuedAt.After(f.Now) || renewed.Claims.IssuedAt.After(f.Now.Add(f.Checker.Policy().ClockSkew+time.Second)) {
		t.Fatalf("pass issued after the change dated %s after now", renewed.Claims.IssuedAt.Sub(f.Now))
	}
	if d := f.Checker.Evaluate(renewed.Text, f.Now.Add(time.Second)); d.Reason != check.ReasonStatusRed {
		t.Fatalf("red pass issued after the change: %s, want the red status reason (not revoked)", d.Reason)
	}
}

// A change for the better voids nothing: passes issued before it show a
// worse colour, and a renewal is dated now.
func TestCheck_ImprovingStatusVoidsNothing(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	const id = "610113199001011230"
	old, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{Name: "张三明", IDNumber: id, Color: pass.Yellow, Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(f.Ctx, f.DB, id, pass.Green, "retest negative", "test"); err != nil {
		t.Fatal(err)
	}
	cutoff, err := f.DB.SubjectCutoff(f.Ctx, old.Claims.Subject)
	if err != nil || !cutoff.IsZero() {
		t.Fatalf("yellow to green made a cutoff %v (%v)", cutoff, err)
	}
	renewed, err := district.Issue(f.Ctx, f.DB, district.IssueRequest{IDNumber: id, TestedAt: f.Now.Add(-time.Hour), Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Claims.IssuedAt.Equal(f.Now) {
		t.Fatalf("renewal dated %s after now, want now", renewed.Claims.IssuedAt.Sub(f.Now))
	}
	if err := f.Checker.Refresh(f.Ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.Checker.Evaluate(renewed.Text, f.Now); !d.Allowed() {
		t.Fatalf("renewed pass: %s, want ok", d.Reason)
	}
}

// A tested-at in the future beyond the clock tolerance is no test result:
// the desk refuses one, and so does the checker.
func TestCheck_FutureTestIsMalformed(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	skew := f.Checker.Policy().ClockSkew
	for _, tc := range []struct {
		ahead time.Duration
		want  check.Reason
	}{
		{0, check.ReasonOK},
		{skew, check.ReasonOK},
		{skew + time.Second, check.ReasonMalformed},
		{30 * 24 * time.Hour, check.ReasonMalformed},
	} {
		c := f.Claims()
		c.TestedAt = f.Now.Add(tc.ahead)
		if d := f.Checker.Evaluate(f.Sign(c), f.Now); d.Reason != tc.want {
			t.Errorf("tested %s ahead: %s, want %s", tc.ahead, d.Reason, tc.want)
		}
	}
}
