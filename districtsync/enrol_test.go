package districtsync

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/tlsca"
)

// enrHub is a hub for enrolment tests: a standalone district served over
// HTTPS from its local CA, on loopback.
type enrHub struct {
	dir string
	db  *store.DB
	url string
	ca  []byte // DER of the local CA
	pin []byte
	// handler serves the current h.db: reopen swaps it behind the same
	// address, as a restarted hub.
	handler atomic.Pointer[http.Handler]
}

func newEnrHub(t *testing.T) *enrHub {
	t.Helper()
	ctx := t.Context()
	h := &enrHub{dir: t.TempDir()}
	var err error
	if h.db, err = store.Open(ctx, h.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close() })
	if _, err := district.Setup(ctx, h.db, district.SetupOptions{Name: "Test District", Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	auth, err := tlsca.LoadOrCreate(h.dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.ca = auth.CACertDER()
	h.pin, _ = PinOfDER(h.ca)
	h.serve()
	h.url = serveTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.handler.Load()).ServeHTTP(w, r) }),
		auth.TLSConfig(), h.ca)
	return h
}

// serve makes the hub's sync server over h.db the one its address serves.
func (h *enrHub) serve() {
	hd := NewServer(ServerConfig{DB: h.db, HubCA: h.ca}).Handler()
	h.handler.Store(&hd)
}

// serveTLS serves handler over HTTPS on loopback, sending caDER after
// the server certificate as `passgate serve` does (nil: the leaf only).
func serveTLS(t *testing.T, handler http.Handler, cfg *tls.Config, caDER []byte) string {
	t.Helper()
	get := cfg.GetCertificate
	cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hi)
		if err != nil || caDER == nil {
			return c, err
		}
		cc := *c
		cc.Certificate = append(append([][]byte(nil), c.Certificate...), caDER)
		return &cc, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: handler, TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { s.Close() })
	return "https://" + ln.Addr().String()
}

// code registers an appliance at the hub and returns its code.
func (h *enrHub) code(t *testing.T, name string, mayIssue bool, valid time.Duration) Code {
	t.Helper()
	c, err := NewCode(h.pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.AddAppliance(t.Context(), name, store.RoleOf(mayIssue), c.Hash(), time.Now().Add(valid), "test"); err != nil {
		t.Fatal(err)
	}
	return c
}

func freshDB(t *testing.T) (*store.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// enrolled is an appliance enrolled online with h.
func enrolled(t *testing.T, h *enrHub, name string, mayIssue bool) *store.DB {
	t.Helper()
	db, _ := freshDB(t)
	if _, err := EnrolOnline(t.Context(), db, h.url, h.code(t, name, mayIssue, time.Hour), "appliance admin pw"); err != nil {
		t.Fatalf("enrol %s: %v", name, err)
	}
	return db
}

func TestEnrol_Online(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	code := h.code(t, "gate-north", true, time.Hour)
	db, _ := freshDB(t)
	res, err := EnrolOnline(ctx, db, h.url, code, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.MayIssue || res.Appliance != "gate-north" || res.AdminPassword == "" {
		t.Fatalf("result %+v", res)
	}
	hd, _ := h.db.District(ctx)
	d, err := db.District(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != hd.ID || !bytes.Equal(d.PseudonymKey, hd.PseudonymKey) || d.Appliance != "gate-north" {
		t.Fatalf("district %+v, hub's %+v", d, hd)
	}
	// Its own issuer key, certified by the hub's root, signs here.
	sk, err := db.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := h.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	rootPub, _ := pass.ParsePublicKey(roots[0].Alg, roots[0].Public)
	cert, err := pass.ParseCert(sk.Cert, []pass.Root{{District: roots[0].District, Key: rootPub}})
	ha, _ := h.db.ApplianceByName(ctx, "gate-north")
	if err != nil || cert.Appliance != store.CertApplianceID(ha.ID) || cert.Key.KID != sk.KID {
		t.Fatalf("issuer certificate %+v: %v", cert, err)
	}
	// The root's private half never leaves the hub.
	if k, _ := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true}); len(k) != 0 {
		t.Fatal("the appliance holds a root private key")
	}
	a, err := h.db.ApplianceByName(ctx, "gate-north")
	if err != nil || !a.Enrolled() || !a.HasIssuer || a.IssuerKID != sk.KID {
		t.Fatalf("hub's appliance row %+v: %v", a, err)
	}
	// The hub trusts the new issuer key (public half only).
	hk, _ := h.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleIssuer})
	found := false
	for _, k := range hk {
		if k.KID == sk.KID {
			found = len(k.Private) == 0
		}
	}
	if !found {
		t.Fatal("the hub does not hold the appliance's issuer key (public only)")
	}
	hubInfo, err := db.SyncHubInfo(ctx)
	if err != nil || hubInfo.URL != h.url || !bytes.Equal(hubInfo.HubCA, h.ca) || len(hubInfo.Token) != 32 {
		t.Fatalf("sync hub %+v: %v", hubInfo, err)
	}
	// The token works for a pull, and the first pull has nothing new.
	c, err := NewClientCA(hubInfo.URL, hubInfo.HubCA, hubInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := PullOnce(ctx, db, c)
	if err != nil {
		t.Fatal(err)
	}
	if pr.KeysAdded != 0 || pr.Revocations != 0 || pr.PolicyChanged {
		t.Fatalf("first pull after enrolment changed %+v", pr)
	}
	// The appliance's own audit trail records the enrolment.
	var acts []string
	_ = db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error { acts = append(acts, r.Action); return nil })
	if !contains(acts, store.AuditEnrolled) {
		t.Fatalf("audit actions %v lack %q", acts, store.AuditEnrolled)
	}
	// A check-only appliance gets no certificate and cannot sign.
	ro := enrolled(t, h, "gate-south", false)
	if _, err := ro.SigningKey(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("check-only appliance signing key: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestEnrol_Refused(t *testing.T) {
	ctx := t.Context()
	h := newEnrHub(t)
	callCode := func(err error) string {
		var ce *CallError
		if errors.As(err, &ce) {
			return ce.Err.Code
		}
		return ""
	}

	t.Run("reused code", func(t *testing.T) {
		code := h.code(t, "once", false, time.Hour)
		db1, _ := freshDB(t)
		if _, err := EnrolOnline(ctx, db1, h.url, code, "pw pw pw pw"); err != nil {
			t.Fatal(err)
		}
		db2, _ := freshDB(t)
		_, err := EnrolOnline(ctx, db2, h.url, code, "pw pw pw pw")
		if callCode(err) != "bad_code" {
			t.Fatalf("second use: %v", err)
		}
		if ok, _ := db2.Initialised(ctx); ok {
			t.Fatal("a refused enrolment left a district behind")
		}
	})
	t.Run("expired code", func(t *testing.T) {
		code := h.code(t, "late", false, time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		db, _ := freshDB(t)
		if _, err := EnrolOnline(ctx, db, h.url, code, "pw pw pw pw"); callCode(err) != "expired_code" {
			t.Fatalf("expired code: %v", err)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		code, _ := NewCode(h.pin) // right hub, never registered
		db, _ := freshDB(t)
		if _, err := EnrolOnline(ctx, db, h.url, code, "pw pw pw pw"); callCode(err) != "bad_code" {
			t.Fatalf("unknown code: %v", err)
		}
	})
	t.Run("retired before use", func(t *testing.T) {
		code := h.code(t, "never", false, time.Hour)
		if _, err := h.db.RetireAppliance(ctx, "never", "", "test"); err != nil {
			t.Fatal(err)
		}
		db, _ := freshDB(t)
		if _, err := EnrolOnline(ctx, db, h.url, code, "pw pw pw pw"); callCode(err) != "bad_code" {
			t.Fatalf("code of a retired appliance: %v", err)
		}
	})
	t.Run("another hub's certificate", func(t *testing.T) {
		// The code pins a different CA: whoever answers at the address is
		// not that hub, and the secret is never sent.
		other, err := tlsca.LoadOrCreate(t.TempDir(), []string{"127.0.0.1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pin, _ := PinOfDER(other.CACertDER())
		code, _ := NewCode(pin)
		if _, err := h.db.AddAppliance(ctx, "spoofed", store.ApplianceGate, code.Hash(), time.Now().Add(time.Hour), "test"); err != nil {
			t.Fatal(err)
		}
		db, _ := freshDB(t)
		_, err = EnrolOnline(ctx, db, h.url, code, "pw pw pw pw")
		if !errors.Is(err, ErrPinMismatch) {
			t.Fatalf("pin mismatch: %v", err)
		}
		if a, _ := h.db.ApplianceByName(ctx, "spoofed"); a.Enrolled() {
			t.Fatal("the code was used although the hub was not the pinned one")
		}
	})
	t.Run("data directory with a district", func(t *testing.T) {
		code := h.code(t, "occupied", false, time.Hour)
		db, _ := freshDB(t)
		if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw pw pw pw"}); err != nil {
			t.Fatal(err)
		}
		if _, err := EnrolOnline(ctx, db, h.url, code, "pw pw pw pw"); !errors.Is(err, ErrNotFresh) {
			t.Fatalf("enrol into a used data directory: %v", err)
		}
		// The code was not spent on it.
		if _, err := h.db.ApplianceByCode(ctx, code.Hash()); err != nil {
			t.Fatalf("code spent: %v", err)
		}
	})
	t.Run("plain http", func(t *testing.T) {
		// Enrolment hands out the pseudonym key: never without TLS.
		srv := NewServer(ServerConfig{DB: h.db, HubCA: h.ca})
		code := h.code(t, "plain", false, time.Hour)
		req := EnrolRequest{Secret: code.Secret[:], BundleKey: make([]byte, 32)}
		rec := doPlain(t, srv.Handler(), PathEnrol, &req, "")
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("enrolment over plain HTTP answered %d", rec.Code)
		}
	})
}

func TestEnrol_Offline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	code := h.code(t, "island", true, time.Hour)
	db, dir := freshDB(t)
	p, err := NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(t.TempDir(), "request.json")
	if err := WritePending(dir, p, reqFile); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, PendingFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pending file: %v %v", st, err)
	}
	// At the hub, by hand.
	req, err := ReadRequestFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := EnrolAppliance(ctx, h.db, req, h.ca, "test", "file test")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealResponse(req.Secret, resp)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, resp.District.PseudonymKey) || bytes.Contains(sealed, resp.Token) {
		t.Fatal("the response file carries secrets in clear")
	}

	// Refused responses change nothing.
	refuseDamagedResponses(t, h, code, resp, sealed)
	otherCA, _ := tlsca.LoadOrCreate(t.TempDir(), []string{"127.0.0.1"}, time.Now())
	wrongHub := *resp
	wrongHub.HubCA = otherCA.CACertDER()
	wrongHubSealed, _ := SealResponse(req.Secret, &wrongHub)
	// Sealed with the right secret but naming another hub's certificate.
	pend, err := ReadPending(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := OpenResponse(code.Secret[:], wrongHubSealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Complete(ctx, db, "", pend, r2, "pw pw pw pw"); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("response with another hub's certificate: %v", err)
	}
	if ok, _ := db.Initialised(ctx); ok {
		t.Fatal("a refused response left a district behind")
	}

	respFile := filepath.Join(t.TempDir(), "response.bin")
	if err := os.WriteFile(respFile, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResponseFile(respFile, code.Secret[:])
	if err != nil {
		t.Fatal(err)
	}
	res, err := Complete(ctx, db, "", pend, got, "pw pw pw pw")
	if err != nil {
		t.Fatal(err)
	}
	if !res.MayIssue || res.Appliance != "island" {
		t.Fatalf("result %+v", res)
	}
	if _, err := db.SigningKey(ctx); err != nil {
		t.Fatalf("offline-enrolled issuer: %v", err)
	}
	// Enrolled without an address: the Syncer declines, bundles remain.
	if _, err := NewSyncer(db, nil); !errors.Is(err, ErrNoHubAddress) {
		t.Fatalf("syncer without hub address: %v", err)
	}
	// The same response again, into the now used directory.
	if _, err := Complete(ctx, db, "", pend, got, "pw pw pw pw"); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("second completion: %v", err)
	}
	// The request cannot be answered twice.
	if _, err := EnrolAppliance(ctx, h.db, req, h.ca, "test", "file test"); !errors.Is(err, errBadCode) {
		t.Fatalf("second answer to one request: %v", err)
	}
}

// refuseDamagedResponses opens damaged copies of a sealed response, and
// one sealed with another code: each is refused with ErrResponseFile.
func refuseDamagedResponses(t *testing.T, h *enrHub, code Code, resp *EnrolResponse, sealed []byte) {
	t.Helper()
	otherCode, _ := NewCode(h.pin)
	foreign, _ := SealResponse(otherCode.Secret[:], resp)
	refused := map[string][]byte{
		"empty":          nil,
		"truncated":      sealed[:len(sealed)-1],
		"header only":    sealed[:len(responseMagic)+5],
		"other magic":    append([]byte("PGENRSP2"), sealed[8:]...),
		"flipped byte":   flip(sealed, len(sealed)/2),
		"flipped nonce":  flip(sealed, len(responseMagic)+1),
		"flipped tag":    flip(sealed, len(sealed)-1),
		"foreign code":   foreign,
		"appended bytes": append(bytes.Clone(sealed), 0),
	}
	for name, b := range refused {
		if _, err := OpenResponse(code.Secret[:], b); !errors.Is(err, ErrResponseFile) {
			t.Errorf("%s: got %v, want ErrResponseFile", name, err)
		}
	}
}

func TestParseRequestFile_Hostile(t *testing.T) {
	t.Parallel()
	good := []byte(`{"format":"passgate-enrol-request/1","request":{"secret":"AAAAAAAAAAAAAAAAAAAAAA==","bundle_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","now_ms":1}}`)
	if _, err := ParseRequestFile(good); err != nil {
		t.Fatalf("good request: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"not json":       []byte("PGE1-AAAA"),
		"other format":   bytes.Replace(good, []byte("request/1"), []byte("request/9"), 1),
		"unknown field":  bytes.Replace(good, []byte(`"format"`), []byte(`"x":1,"format"`), 1),
		"truncated":      good[:len(good)-3],
		"too large":      append(bytes.Clone(good), bytes.Repeat([]byte(" "), maxRequestFile)...),
		"secret as text": bytes.Replace(good, []byte(`"AAAAAAAAAAAAAAAAAAAAAA=="`), []byte(`"not base64!"`), 1),
	} {
		if _, err := ParseRequestFile(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzOpenResponse(f *testing.F) {
	secret := bytes.Repeat([]byte{3}, SecretSize)
	sealed, _ := SealResponse(secret, &EnrolResponse{Appliance: "x", Token: make([]byte, 32)})
	f.Add(sealed)
	f.Add([]byte("PGENRSP1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := OpenResponse(secret, b)
		if err != nil {
			if !errors.Is(err, ErrResponseFile) {
				t.Fatalf("error %v does not wrap ErrResponseFile", err)
			}
			return
		}
		// Only a file sealed with the secret opens (the seed, whose nonce
		// differs per process), and GCM authenticates every byte of it.
		if resp.Appliance != "x" {
			t.Fatalf("opened a forged file: %+v", resp)
		}
		for _, i := range []int{0, len(responseMagic), len(b) / 2, len(b) - 1} {
			if _, err := OpenResponse(secret, flip(b, i)); err == nil {
				t.Fatalf("byte %d flipped and still opened", i)
			}
		}
	})
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// identityKey is the Ed25519 identity point: a "public key" whose
// signature R = identity, s = 0 verifies every message under plain
// Ed25519 rules, so nobody holds its private half.
var identityKey = append([]byte{1}, make([]byte, 31)...)

func identitySig() []byte { return append(bytes.Clone(identityKey), make([]byte, 32)...) }

// resign signs req again with the bundle key of p, after the test
// changed req: only the issuer part is then wrong.
func resign(t *testing.T, p *Pending, req *EnrolRequest) {
	t.Helper()
	bk, err := ParseBundleKey(p.BundleKey)
	if err != nil {
		t.Fatal(err)
	}
	sig := req.IssuerSig
	if err := signEnrolRequest(req, nil, bk); err != nil {
		t.Fatal(err)
	}
	req.IssuerSig = sig
}

func TestEnrol_ProofOfPossession(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	other, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(t *testing.T, p *Pending, req *EnrolRequest){
		"small-order issuer key": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.IssuerKey, req.IssuerSig = identityKey, identitySig()
			resign(t, p, req)
		},
		"someone else's issuer key": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.IssuerKey = other.Public().Raw // signature still by the appliance's own key
			resign(t, p, req)
		},
		"issuer signature of another request": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.Now++
			resign(t, p, req)
		},
		"no issuer signature": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.IssuerSig = nil
		},
		"bundle signature does not match": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.BundleSig = flip(req.BundleSig, 3)
		},
		"small-order bundle key": func(t *testing.T, p *Pending, req *EnrolRequest) {
			req.BundleKey, req.BundleSig = identityKey, identitySig()
		},
	}
	issuers := func() int {
		k, err := h.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleIssuer})
		if err != nil {
			t.Fatal(err)
		}
		return len(k)
	}
	refusals := func() int {
		n := 0
		_ = h.db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditEnrolRefused {
				n++
			}
			return nil
		})
		return n
	}
	n := 0
	for name, spoil := range cases {
		for _, online := range []bool{true, false} {
			n++
			t.Run(fmt.Sprintf("%s online=%v", name, online), func(t *testing.T) {
				code := h.code(t, fmt.Sprintf("pop-%d", n), true, time.Hour)
				p, err := NewPending(code, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				req := p.Request
				spoil(t, p, &req)
				beforeKeys, beforeRef := issuers(), refusals()
				var cerr error
				if online {
					c, err := NewClient(h.url, code.Pin[:], nil)
					if err != nil {
						t.Fatal(err)
					}
					defer c.CloseIdle()
					var resp EnrolResponse
					cerr = c.Call(ctx, PathEnrol, &req, &resp)
				} else {
					_, cerr = EnrolAppliance(ctx, h.db, &req, h.ca, "test", "file test")
				}
				var ce *CallError
				if !errors.As(cerr, &ce) || ce.Err.Code != "bad_request" {
					t.Fatalf("refusal: %v", cerr)
				}
				if issuers() != beforeKeys {
					t.Fatal("a refused request got an issuer key certified")
				}
				if refusals() != beforeRef+1 {
					t.Fatal("the refusal left no audit record")
				}
				// The code is not spent: the real appliance can still enrol.
				if _, err := h.db.ApplianceByCode(ctx, code.Hash()); err != nil {
					t.Fatalf("code spent by a refused request: %v", err)
				}
				good := p.Request
				if online {
					db, _ := freshDB(t)
					if _, err := Complete(ctx, db, h.url, p, mustEnrol(t, h, code, &good), "pw pw pw pw"); err != nil {
						t.Fatal(err)
					}
				} else if _, err := EnrolAppliance(ctx, h.db, &good, h.ca, "test", "file test"); err != nil {
					t.Fatalf("the valid request after a refused one: %v", err)
				}
			})
		}
	}
}

// mustEnrol sends req to the hub online.
func mustEnrol(t *testing.T, h *enrHub, code Code, req *EnrolRequest) *EnrolResponse {
	t.Helper()
	c, err := NewClient(h.url, code.Pin[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdle()
	var resp EnrolResponse
	if err := c.Call(t.Context(), PathEnrol, req, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

func TestEnrol_AddressAndFingerprint(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	db := enrolled(t, h, "online-one", true)
	sk, err := db.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := pass.ParsePublicKey(sk.Alg, sk.Public)
	want := pub.Fingerprint()
	a, err := h.db.ApplianceByName(ctx, "online-one")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.EnrolledFrom, "127.0.0.1:") || !bytes.Equal(a.IssuerFingerprint, want[:]) {
		t.Fatalf("enrolled from %q, fingerprint %x, want 127.0.0.1:… and %x", a.EnrolledFrom, a.IssuerFingerprint, want)
	}
	code := h.code(t, "by-file", true, time.Hour)
	p, err := NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnrolAppliance(ctx, h.db, &p.Request, h.ca, "test", "file req.json"); err != nil {
		t.Fatal(err)
	}
	fpr, _ := RequestFingerprint(&p.Request)
	if a, _ = h.db.ApplianceByName(ctx, "by-file"); a.EnrolledFrom != "file req.json" || !bytes.Equal(a.IssuerFingerprint, fpr) {
		t.Fatalf("by file: from %q, fingerprint %x", a.EnrolledFrom, a.IssuerFingerprint)
	}
}

// The appliance's name never reaches a pass: an appliance enrolled with
// the longest name the hub accepts (64 bytes of Chinese) issues phone
// passes that fit a version-15 QR code at level M, and names the hub
// cannot carry are refused when registered.
func TestEnrol_LongNameIssuesPhonePasses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	name := strings.Repeat("浦", 21) + "1" // 64 bytes
	if len(name) != store.MaxApplianceName {
		t.Fatalf("name is %d bytes", len(name))
	}
	db := enrolled(t, h, name, true)
	for i, id := range []string{"110101199003071233", "11010519491231002X"} {
		iss, err := district.Issue(ctx, db, district.IssueRequest{Name: "欧阳娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜", IDNumber: id, Actor: "desk"})
		if err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
		_, version, err := pass.QRPNG(iss.Text, 1)
		if err != nil || version > 15 {
			t.Fatalf("phone pass of %d characters: QR version %d-M (%v)", len(iss.Text), version, err)
		}
	}
	for _, bad := range []string{
		strings.Repeat("浦", 22), // 66 bytes
		"东门\u202e机闸",            // bidirectional override
		"东门\u200b闸机",            // zero-width space (format)
		"gate\u0085north",       // C1 control
		"gate\tnorth",           // C0 control
	} {
		c, _ := NewCode(h.pin)
		if _, err := h.db.AddAppliance(ctx, bad, store.ApplianceOffice, c.Hash(), time.Now().Add(time.Hour), "test"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

// An appliance enrolled into a data directory opened with a seal key
// keeps its issuer key, bundle key and pseudonym key sealed: the files
// hold none of them, and they work once opened with the key.
func TestEnrol_SealedAppliance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	dir := t.TempDir()
	secret := bytes.Repeat([]byte("k"), 32)
	db, err := store.Open(ctx, dir, store.WithSealKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	code := h.code(t, "sealed-one", true, time.Hour)
	p, err := NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := EnrolAppliance(ctx, h.db, &p.Request, h.ca, "test", "file test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Complete(ctx, db, "", p, resp, "pw pw pw pw"); err != nil {
		t.Fatal(err)
	}
	hub, err := db.SyncHubInfo(ctx)
	if err != nil || !bytes.Equal(hub.BundleKey, p.BundleKey) {
		t.Fatalf("bundle key after sealing: %v", err)
	}
	if _, err := db.SigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][]byte{"issuer seed": p.IssuerKey[1:], "bundle seed": p.BundleKey[:32], "pseudonym key": resp.District.PseudonymKey} {
		if bytes.Contains(b, s) {
			t.Errorf("the database holds the %s in clear", name)
		}
	}
}

// FuzzCheckPossession: whatever a request holds, it is accepted only
// when each key it offers parses and signed the request.
func FuzzCheckPossession(f *testing.F) {
	code, _ := NewCode(make([]byte, 32))
	p, err := NewPending(code, time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	r := p.Request
	f.Add(r.Secret, r.IssuerAlg, r.IssuerKey, r.IssuerSig, r.BundleKey, r.BundleSig, r.Now)
	f.Add(r.Secret, r.IssuerAlg, identityKey, identitySig(), r.BundleKey, r.BundleSig, r.Now)
	f.Add(r.Secret, 0, []byte(nil), []byte(nil), identityKey, identitySig(), r.Now)
	f.Fuzz(func(t *testing.T, secret []byte, alg int, ikey, isig, bkey, bsig []byte, now int64) {
		req := &EnrolRequest{Secret: secret, IssuerAlg: alg, IssuerKey: ikey, IssuerSig: isig, BundleKey: bkey, BundleSig: bsig, Now: now}
		pub, err := checkPossession(req)
		if err != nil {
			return
		}
		msg := EnrolMessage(req)
		bk, berr := ParseBundlePublicKey(bkey)
		if berr != nil || !bk.Verify(msg, bsig) {
			t.Fatal("accepted without the bundle key's signature")
		}
		if len(ikey) > 0 && (pub == nil || !pub.Verify(msg, isig)) {
			t.Fatal("accepted without the issuer key's signature")
		}
	})
}
