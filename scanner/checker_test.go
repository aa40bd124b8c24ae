package scanner_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"passgate/district"
	"passgate/pass"
	"passgate/scanner"
	"passgate/store"
)

// fixture is a standalone district in a temporary directory, with a fixed
// clock shared by the store and the checker.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	db      *store.DB
	c       *scanner.Checker
	now     time.Time
	root    *pass.PrivateKey
	issuer  *pass.PrivateKey
	cert    []byte
	distID  string
	signer  *pass.Signer
	pseudoK []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, db: db, now: now}
	roots, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil || len(roots) != 1 {
		t.Fatalf("root keys: %v %d", err, len(roots))
	}
	if f.root, err = pass.ParsePrivateKey(roots[0].Private); err != nil {
		t.Fatal(err)
	}
	ik, err := db.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.issuer, err = pass.ParsePrivateKey(ik.Private); err != nil {
		t.Fatal(err)
	}
	f.cert = ik.Cert
	if f.signer, err = pass.NewSigner(f.issuer, f.cert); err != nil {
		t.Fatal(err)
	}
	d, err := db.District(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.distID, f.pseudoK = d.ID, d.PseudonymKey
	if f.c, err = scanner.New(ctx, scanner.Config{DB: db, Now: func() time.Time { return f.now }}); err != nil {
		t.Fatal(err)
	}
	return f
}

// claims returns claims of a new person that the default policy allows
// at f.now.
func (f *fixture) claims() pass.Claims {
	c := pass.Claims{
		District: f.distID,
		Name:     "张*明", IDTail: "1234", Color: pass.Green, TestedAt: f.now.Add(-18 * time.Hour),
		Doses: 2, IssuedAt: f.now.Add(-time.Hour), ExpiresAt: f.now.Add(23 * time.Hour), Kind: pass.Phone,
	}
	if _, err := rand.Read(c.ID[:]); err != nil {
		f.t.Fatal(err)
	}
	// A different person each time, so a revocation in one case does not
	// reach another.
	if _, err := rand.Read(c.Subject[:]); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) sign(c pass.Claims) string {
	f.t.Helper()
	return signWith(f.t, f.signer, c)
}

func signWith(t testing.TB, s *pass.Signer, c pass.Claims) string {
	t.Helper()
	text, err := s.Sign(&c)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return text
}

// signerFor certifies a new issuer key of alg under root.
func (f *fixture) signerFor(root *pass.PrivateKey, alg pass.Alg, nbf, naf time.Time) *pass.Signer {
	f.t.Helper()
	k, err := pass.GenerateKey(alg, rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	cert, err := pass.IssueCert(root, pass.Cert{Key: k.Public(), District: f.distID, Appliance: "other", NotBefore: nbf, NotAfter: naf})
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := pass.NewSigner(k, cert)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) setPolicy(mod func(*store.Policy)) {
	f.t.Helper()
	p := store.DefaultPolicy()
	if mod != nil {
		mod(&p)
	}
	if err := f.db.SetPolicy(f.ctx, &p, "test"); err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		f.t.Fatal(err)
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

func TestCheck_HostileAndPolicy(t *testing.T) {
	f := newFixture(t)
	good := f.sign(f.claims())
	gm := open(t, good)
	var certBytes []byte
	if err := cbor.Unmarshal(gm.Unprotected[-65537], &certBytes); err != nil {
		t.Fatalf("certificate header: %v", err)
	}

	otherRoot, _ := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	year := 365 * 24 * time.Hour

	nested := bytes.Repeat([]byte{0x81}, 10000)
	nested = append(nested, 0x00)
	bomb := deflate(make([]byte, 2<<20)) // fits the length cap, inflates far past the inflate cap
	badSum := deflate(mustCBOR(t, cbor.Tag{Number: 18, Content: gm}))
	badSum[len(badSum)-1] ^= 0xff

	type tc struct {
		name   string
		input  func() string
		policy func(*store.Policy)
		setup  func()
		want   scanner.Reason
	}
	cases := []tc{
		{name: "empty", input: func() string { return "" }, want: scanner.ReasonNotAPass},
		{name: "whitespace", input: func() string { return " \t\r\n " }, want: scanner.ReasonNotAPass},
		{name: "1MB of text", input: func() string { return strings.Repeat("A", 1<<20) }, want: scanner.ReasonTooLong},
		{name: "1MB behind the prefix", input: func() string { return pass.Prefix + strings.Repeat("0", 1<<20) }, want: scanner.ReasonTooLong},
		{name: "invalid UTF-8", input: func() string { return "\xff\xfe\xfd" }, want: scanner.ReasonNotAPass},
		{name: "invalid UTF-8 after prefix", input: func() string { return pass.Prefix + "\xff\xfe\xfd" }, want: scanner.ReasonMalformed},
		{name: "EU DCC prefix", input: func() string { return "HC1:" + strings.TrimPrefix(good, pass.Prefix) }, want: scanner.ReasonNotAPass},
		{name: "lower-case prefix", input: func() string { return strings.ToLower(pass.Prefix) + strings.TrimPrefix(good, pass.Prefix) }, want: scanner.ReasonNotAPass},
		{name: "a URL", input: func() string { return "https://example.org/" }, want: scanner.ReasonNotAPass},
		{name: "prefix only", input: func() string { return pass.Prefix }, want: scanner.ReasonMalformed},
		{name: "lower-case Base45", input: func() string { return pass.Prefix + "abc" }, want: scanner.ReasonMalformed},
		{name: "NUL inside", input: func() string { return good[:20] + "\x00" + good[20:] }, want: scanner.ReasonMalformed},
		{name: "overflowing triplet", input: func() string { return pass.Prefix + ":::" }, want: scanner.ReasonMalformed},
		{name: "overflowing pair", input: func() string { return pass.Prefix + "::" }, want: scanner.ReasonMalformed},
		{name: "dangling character", input: func() string { return pass.Prefix + "A" }, want: scanner.ReasonMalformed},
		{name: "trailing character not Base45", input: func() string { return good + "=" }, want: scanner.ReasonMalformed},
		{name: "not zlib", input: func() string { return pass.Prefix + base45([]byte("hello, world")) }, want: scanner.ReasonMalformed},
		{name: "truncated zlib", input: func() string {
			z := unbase45(t, strings.TrimPrefix(good, pass.Prefix))
			return pass.Prefix + base45(z[:len(z)/2])
		}, want: scanner.ReasonMalformed},
		{name: "zlib bomb", input: func() string { return pass.Prefix + base45(bomb) }, want: scanner.ReasonMalformed},
		{name: "zlib bad checksum", input: func() string { return pass.Prefix + base45(badSum) }, want: scanner.ReasonMalformed},
		{name: "invalid CBOR", input: func() string { return wrap([]byte{0xff, 0x00}) }, want: scanner.ReasonMalformed},
		{name: "deeply nested CBOR", input: func() string { return wrap(nested) }, want: scanner.ReasonMalformed},
		{name: "wrong COSE tag", input: func() string { return wrap(mustCBOR(t, cbor.Tag{Number: 98, Content: gm})) }, want: scanner.ReasonMalformed},
		{name: "untagged", input: func() string { return wrap(mustCBOR(t, gm)) }, want: scanner.ReasonMalformed},
		{name: "array of three", input: func() string {
			return wrap(mustCBOR(t, cbor.Tag{Number: 18, Content: []any{gm.Protected, gm.Unprotected, gm.Payload}}))
		}, want: scanner.ReasonMalformed},
		{name: "trailing bytes after COSE", input: func() string {
			return wrap(append(mustCBOR(t, cbor.Tag{Number: 18, Content: gm}), 0x00))
		}, want: scanner.ReasonMalformed},
		{name: "missing algorithm", input: func() string {
			m := gm
			m.Protected = mustCBOR(t, map[int]any{4: f.issuer.Public().KID[:]})
			return seal(t, m)
		}, want: scanner.ReasonMalformed},
		{name: "unsupported algorithm", input: func() string {
			m := gm
			m.Protected = mustCBOR(t, map[int]any{1: -257, 4: f.issuer.Public().KID[:]})
			return seal(t, m)
		}, want: scanner.ReasonMalformed},
		{name: "flipped bit in payload", input: func() string {
			c := f.claims()
			m := open(t, f.sign(c))
			i := bytes.Index(m.Payload, c.ID[:])
			if i < 0 {
				t.Fatal("pass id not found in payload")
			}
			m.Payload = flip(m.Payload, i+3)
			return seal(t, m)
		}, want: scanner.ReasonBadSignature},
		{name: "flipped bit in signature", input: func() string {
			m := gm
			m.Signature = flip(gm.Signature, 10)
			return seal(t, m)
		}, want: scanner.ReasonBadSignature},
		{name: "flipped bit in certificate signature", input: func() string {
			m := gm
			m.Unprotected = map[int]cbor.RawMessage{-65537: mustCBOR(t, flip(certBytes, len(certBytes)-5))}
			return seal(t, m)
		}, want: scanner.ReasonBadSignature},
		{name: "no certificate", input: func() string {
			m := gm
			m.Unprotected = map[int]cbor.RawMessage{}
			return seal(t, m)
		}, want: scanner.ReasonUnknownIssuer},
		{name: "certificate from another root", input: func() string {
			return signWith(t, f.signerFor(otherRoot, pass.AlgEdDSA, f.now.Add(-time.Hour), f.now.Add(year)), f.claims())
		}, want: scanner.ReasonUnknownIssuer},
		{name: "expired issuer certificate", input: func() string {
			return signWith(t, f.signerFor(f.root, pass.AlgEdDSA, f.now.Add(-2*year), f.now.Add(-year)), f.claims())
		}, want: scanner.ReasonIssuerExpired},
		{name: "issuer certificate not yet valid", input: func() string {
			return signWith(t, f.signerFor(f.root, pass.AlgEdDSA, f.now.Add(time.Hour*24), f.now.Add(year)), f.claims())
		}, want: scanner.ReasonIssuerExpired},
		{name: "revoked issuer key", setup: func() {
			mustRevoke(t, f, store.RevokeIssuer, f.issuer.Public().KID[:])
		}, input: func() string { return f.sign(f.claims()) }, want: scanner.ReasonIssuerRevoked},
		{name: "ES256 issuer", input: func() string {
			return signWith(t, f.signerFor(f.root, pass.AlgES256, f.now.Add(-time.Hour), f.now.Add(year)), f.claims())
		}, want: scanner.ReasonOK},
		{name: "expired pass", input: func() string {
			c := f.claims()
			c.IssuedAt, c.ExpiresAt = f.now.Add(-48*time.Hour), f.now.Add(-24*time.Hour)
			return f.sign(c)
		}, want: scanner.ReasonExpired},
		{name: "expired within clock skew", input: func() string {
			c := f.claims()
			c.IssuedAt, c.ExpiresAt = f.now.Add(-24*time.Hour), f.now.Add(-time.Minute)
			return f.sign(c)
		}, want: scanner.ReasonOK},
		{name: "not yet valid", input: func() string {
			c := f.claims()
			c.IssuedAt, c.ExpiresAt = f.now.Add(time.Hour), f.now.Add(25*time.Hour)
			return f.sign(c)
		}, want: scanner.ReasonNotYetValid},
		{name: "revoked subject", input: func() string {
			c := f.claims()
			mustRevoke(t, f, store.RevokeSubject, c.Subject[:])
			return f.sign(c)
		}, want: scanner.ReasonRevoked},
		{name: "revoked pass", input: func() string {
			c := f.claims()
			mustRevoke(t, f, store.RevokePass, c.ID[:])
			return f.sign(c)
		}, want: scanner.ReasonRevoked},
		{name: "red", input: func() string { c := f.claims(); c.Color = pass.Red; return f.sign(c) }, want: scanner.ReasonStatusRed},
		{name: "yellow", input: func() string { c := f.claims(); c.Color = pass.Yellow; return f.sign(c) }, want: scanner.ReasonStatusYellow},
		{name: "yellow allowed by policy", policy: func(p *store.Policy) { p.Colors = []pass.Color{pass.Green, pass.Yellow} },
			input: func() string { c := f.claims(); c.Color = pass.Yellow; return f.sign(c) }, want: scanner.ReasonOK},
		{name: "test missing", input: func() string { c := f.claims(); c.TestedAt = time.Time{}; return f.sign(c) }, want: scanner.ReasonTestMissing},
		{name: "test missing, none required", policy: func(p *store.Policy) { p.MaxTestAge = 0 },
			input: func() string { c := f.claims(); c.TestedAt = time.Time{}; return f.sign(c) }, want: scanner.ReasonOK},
		{name: "test too old", input: func() string { c := f.claims(); c.TestedAt = f.now.Add(-73 * time.Hour); return f.sign(c) }, want: scanner.ReasonTestTooOld},
		{name: "test too old for 48h", policy: func(p *store.Policy) { p.MaxTestAge = 48 * time.Hour },
			input: func() string { c := f.claims(); c.TestedAt = f.now.Add(-49 * time.Hour); return f.sign(c) }, want: scanner.ReasonTestTooOld},
		{name: "doses missing", policy: func(p *store.Policy) { p.MinDoses = 3 },
			input: func() string { return f.sign(f.claims()) }, want: scanner.ReasonDosesMissing},
		{name: "paper refused", policy: func(p *store.Policy) { p.AcceptPaper = false },
			input: func() string { c := f.claims(); c.Kind = pass.Paper; return f.sign(c) }, want: scanner.ReasonPaperRefused},
		{name: "valid", input: func() string { return good }, want: scanner.ReasonOK},
		{name: "valid with CRLF", input: func() string { return f.sign(f.claims()) + "\r\n" }, want: scanner.ReasonOK},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			f.setPolicy(tt.policy)
			if tt.setup != nil {
				tt.setup()
			}
			in := tt.input()
			if err := f.c.Refresh(f.ctx); err != nil {
				t.Fatal(err)
			}
			d, err := f.c.Check(f.ctx, "test", in)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if d.Reason != tt.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tt.want)
			}
			if want := tt.want == scanner.ReasonOK; d.Allowed() != want {
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
		if tt.want == scanner.ReasonIssuerRevoked {
			// Start the remaining cases from a clean district.
			f = newFixture(t)
			good = f.sign(f.claims())
			gm = open(t, good)
		}
	}
}

func mustRevoke(t testing.TB, f *fixture, kind int, target []byte) {
	t.Helper()
	r := &store.Revocation{Kind: kind, Target: bytes.Clone(target), Reason: "test"}
	if kind == store.RevokeSubject {
		r.Before = f.now
	}
	if err := f.db.CreateRevocation(f.ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestCheck_Repeat(t *testing.T) {
	f := newFixture(t)
	text := f.sign(f.claims())
	first, err := f.c.Check(f.ctx, "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	if first.Repeat {
		t.Fatal("first check flagged as repeat")
	}
	f.now = f.now.Add(time.Minute)
	second, err := f.c.Check(f.ctx, "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Repeat || !second.Allowed() {
		t.Fatalf("second check: repeat=%v allowed=%v", second.Repeat, second.Allowed())
	}

	t.Run("AcrossProcesses", func(t *testing.T) {
		// A new checker (another process, e.g. the CLI) learns of the
		// earlier check from the log.
		c2, err := scanner.New(f.ctx, scanner.Config{DB: f.db, Now: func() time.Time { return f.now.Add(time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c2.Check(f.ctx, "cli", text)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Repeat {
			t.Fatal("repeat not found through the log")
		}
	})

	t.Run("AfterWindow", func(t *testing.T) {
		f.now = f.now.Add(10 * time.Minute)
		d, err := f.c.Check(f.ctx, "gate-1", text)
		if err != nil {
			t.Fatal(err)
		}
		if d.Repeat {
			t.Fatal("flagged as repeat after the repeat window")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		text := f.sign(f.claims())
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := f.c.Check(f.ctx, "gate-2", text)
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
	f := newFixture(t)
	c := f.claims()
	d, err := f.c.Check(f.ctx, "gate-1", f.sign(c))
	if err != nil {
		t.Fatal(err)
	}
	scans, err := f.db.FindScans(f.ctx, store.ScanFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(scans) != 1 {
		t.Fatalf("%d scans logged, want 1", len(scans))
	}
	s := scans[0]
	if s.ID != d.ScanID || s.PassID != c.ID || s.Subject != c.Subject || s.Source != "gate-1" ||
		s.Decision != scanner.Allow || s.Reason != string(scanner.ReasonOK) || s.KID != f.issuer.Public().KID {
		t.Fatalf("logged scan %+v does not match decision %+v", s, d)
	}
}

func TestCheck_StatusChangeVoidsEarlierPasses(t *testing.T) {
	f := newFixture(t)
	old, err := district.Issue(f.ctx, f.db, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230", TestedAt: f.now.Add(-time.Hour), Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	d := f.c.Evaluate(old.Text, f.now)
	if !d.Allowed() {
		t.Fatalf("fresh pass denied: %s", d.Reason)
	}
	// Red, then green again within the same second: the old pass stays
	// void, the pass issued after the change is valid.
	if _, err := district.SetStatus(f.ctx, f.db, "610113199001011230", pass.Red, "positive test", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(f.ctx, f.db, "610113199001011230", pass.Green, "retest negative", "test"); err != nil {
		t.Fatal(err)
	}
	renewed, err := district.Issue(f.ctx, f.db, district.IssueRequest{IDNumber: "610113199001011230", Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	later := f.now.Add(2 * time.Second)
	if d := f.c.Evaluate(old.Text, later); d.Reason != scanner.ReasonRevoked {
		t.Fatalf("old pass: %s, want revoked", d.Reason)
	}
	if d := f.c.Evaluate(renewed.Text, later); !d.Allowed() {
		t.Fatalf("renewed pass: %s, want ok", d.Reason)
	}
}

func TestCheck_TrustsAnotherDistrictsRoot(t *testing.T) {
	f := newFixture(t)
	other, _ := pass.GenerateKey(pass.AlgES256, rand.Reader)
	own := f.distID
	f.distID = "D-other" // signerFor and claims speak for the other district
	text := signWith(t, f.signerFor(other, pass.AlgEdDSA, f.now.Add(-time.Hour), f.now.Add(time.Hour*24*30)), f.claims())
	f.distID = own
	// The other district's root certifying an issuer of this district.
	forged := signWith(t, f.signerFor(other, pass.AlgEdDSA, f.now.Add(-time.Hour), f.now.Add(time.Hour*24*30)), f.claims())
	if d := f.c.Evaluate(text, f.now); d.Reason != scanner.ReasonUnknownIssuer {
		t.Fatalf("before trusting: %s", d.Reason)
	}
	pub := other.Public()
	if err := f.db.CreateKey(f.ctx, &store.Key{KID: pub.KID, Role: store.RoleRoot, Alg: pub.Alg, Public: pub.Raw, District: "D-other", CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.c.Evaluate(text, f.now); !d.Allowed() {
		t.Fatalf("after trusting: %s", d.Reason)
	}
	if d := f.c.Evaluate(forged, f.now); d.Reason != scanner.ReasonUnknownIssuer {
		t.Fatalf("another district's root certifying this district: %s", d.Reason)
	}
}

func TestCheck_Subscribe(t *testing.T) {
	f := newFixture(t)
	ch, stop := f.c.Subscribe(4)
	d, err := f.c.Check(f.ctx, "gate-1", "garbage")
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
	f := newFixture(t)
	f.db.Close()
	_, err := f.c.Check(f.ctx, "gate-1", f.sign(f.claims()))
	if err == nil {
		t.Fatal("check succeeded on a closed store: a check that was not logged must fail")
	}
}

// Once the repeat set is complete it answers alone; a check logged by
// another process makes it consult the log again.
func TestCheck_RepeatAfterWarmup(t *testing.T) {
	f := newFixture(t)
	// Well past the first window: the set now knows every check.
	f.now = time.Now().Add(time.Hour)
	c := f.claims()
	c.IssuedAt, c.ExpiresAt, c.TestedAt = f.now.Add(-time.Minute), f.now.Add(time.Hour), f.now.Add(-time.Hour)
	text := f.sign(c)
	if d, _ := f.c.Check(f.ctx, "gate-1", text); d.Repeat {
		t.Fatal("first check flagged as repeat")
	}
	if d, _ := f.c.Check(f.ctx, "gate-1", text); !d.Repeat {
		t.Fatal("second check not flagged")
	}

	other, err := store.Open(f.ctx, filepath.Dir(f.db.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c2 := c
	if _, err := rand.Read(c2.ID[:]); err != nil {
		t.Fatal(err)
	}
	if err := other.LogScan(f.ctx, &store.Scan{At: f.now, Source: "cli", Decision: scanner.Allow, Reason: "ok", PassID: c2.ID, Subject: c2.Subject}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	if d, _ := f.c.Check(f.ctx, "gate-1", f.sign(c2)); !d.Repeat {
		t.Fatal("a check logged by another process was not seen as a repeat")
	}
}

// A pass dated ahead within the clock tolerance must not outlive a status
// change: the cutoff is widened by the tolerance at every checker.
func TestCheck_StatusChangeVoidsPassDatedAhead(t *testing.T) {
	f := newFixture(t)
	const id = "610113199001011230"
	if _, err := district.Issue(f.ctx, f.db, district.IssueRequest{Name: "张三明", IDNumber: id, Doses: -1, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	c := f.claims()
	c.Subject = pass.Pseudonym(f.pseudoK, id)
	c.IssuedAt = f.now.Add(240 * time.Second)
	c.ExpiresAt = c.IssuedAt.Add(24 * time.Hour)
	ahead := f.sign(c)
	if d := f.c.Evaluate(ahead, f.now); !d.Allowed() {
		t.Fatalf("pass dated 240 s ahead, before the change: %s, want ok", d.Reason)
	}
	if _, err := district.SetStatus(f.ctx, f.db, id, pass.Red, "positive test", "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{f.now, f.now.Add(time.Hour)} {
		if d := f.c.Evaluate(ahead, at); d.Reason != scanner.ReasonRevoked {
			t.Fatalf("pass dated 240 s ahead, checked at %s after the holder turned red: %s, want revoked", at.Sub(f.now), d.Reason)
		}
	}
	// A pass issued right after the change is dated past the widened
	// cutoff, and checkers within the tolerance accept it.
	renewed, err := district.Issue(f.ctx, f.db, district.IssueRequest{IDNumber: id, Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Claims.IssuedAt.After(f.now) || renewed.Claims.IssuedAt.After(f.now.Add(f.c.Policy().ClockSkew+time.Second)) {
		t.Fatalf("pass issued after the change dated %s after now", renewed.Claims.IssuedAt.Sub(f.now))
	}
	if d := f.c.Evaluate(renewed.Text, f.now.Add(time.Second)); d.Reason != scanner.ReasonStatusRed {
		t.Fatalf("red pass issued after the change: %s, want the red status reason (not revoked)", d.Reason)
	}
}

// A change for the better voids nothing: passes issued before it show a
// worse colour, and a renewal is dated now.
func TestCheck_ImprovingStatusVoidsNothing(t *testing.T) {
	f := newFixture(t)
	const id = "610113199001011230"
	old, err := district.Issue(f.ctx, f.db, district.IssueRequest{Name: "张三明", IDNumber: id, Color: pass.Yellow, Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(f.ctx, f.db, id, pass.Green, "retest negative", "test"); err != nil {
		t.Fatal(err)
	}
	cutoff, err := f.db.SubjectCutoff(f.ctx, old.Claims.Subject)
	if err != nil || !cutoff.IsZero() {
		t.Fatalf("yellow to green made a cutoff %v (%v)", cutoff, err)
	}
	renewed, err := district.Issue(f.ctx, f.db, district.IssueRequest{IDNumber: id, TestedAt: f.now.Add(-time.Hour), Doses: -1, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Claims.IssuedAt.Equal(f.now) {
		t.Fatalf("renewal dated %s after now, want now", renewed.Claims.IssuedAt.Sub(f.now))
	}
	if err := f.c.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	if d := f.c.Evaluate(renewed.Text, f.now); !d.Allowed() {
		t.Fatalf("renewed pass: %s, want ok", d.Reason)
	}
}

// A tested-at in the future beyond the clock tolerance is no test result:
// the desk refuses one, and so does the checker.
func TestCheck_FutureTestIsMalformed(t *testing.T) {
	f := newFixture(t)
	skew := f.c.Policy().ClockSkew
	for _, tc := range []struct {
		ahead time.Duration
		want  scanner.Reason
	}{
		{0, scanner.ReasonOK},
		{skew, scanner.ReasonOK},
		{skew + time.Second, scanner.ReasonMalformed},
		{30 * 24 * time.Hour, scanner.ReasonMalformed},
	} {
		c := f.claims()
		c.TestedAt = f.now.Add(tc.ahead)
		if d := f.c.Evaluate(f.sign(c), f.now); d.Reason != tc.want {
			t.Errorf("tested %s ahead: %s, want %s", tc.ahead, d.Reason, tc.want)
		}
	}
}
