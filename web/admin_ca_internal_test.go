package web

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/store"
	"passgate/tlsca"
)

// caTestServer serves only the CA routes of a fresh appliance, behind the
// same guard as the full handler, and returns session cookies for an
// admin and a staff member.
func caTestServer(t *testing.T) (s *Server, url string, admin, staff *http.Cookie) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "admin-password"}); err != nil {
		t.Fatal(err)
	}
	c, err := check.New(ctx, check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s = New(Config{DB: db, Checker: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.SetCA(nil) })
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		if strings.HasPrefix(rt.pattern, "GET /admin/ca") {
			mux.Handle(rt.pattern, s.guard(rt.access, rt.handler))
		}
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	session := func(u *store.User) *http.Cookie {
		tok, err := db.CreateSession(ctx, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: SessionCookie, Value: tok}
	}
	a, err := db.FindUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := store.HashPassword("staff-password")
	if err != nil {
		t.Fatal(err)
	}
	st := &store.User{Username: "staff1", Role: store.UserStaff, PasswordHash: hash}
	if err := db.CreateUser(ctx, st, "admin"); err != nil {
		t.Fatal(err)
	}
	return s, srv.URL, session(a), session(st)
}

func caGet(t *testing.T, url string, ck *http.Cookie) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if ck != nil {
		req.AddCookie(ck)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestCARoutes_Download(t *testing.T) {
	t.Parallel()
	s, url, admin, _ := caTestServer(t)
	a, err := tlsca.LoadOrCreateNamed(t.TempDir(), "雁塔区", []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.SetCA(a.CACertPEM())

	resp, body := caGet(t, url+"/admin/ca.crt", admin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ca.crt: %s %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-x509-ca-cert" {
		t.Errorf("ca.crt Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="passgate-ca.crt"` {
		t.Errorf("ca.crt Content-Disposition %q", cd)
	}
	if !bytes.Equal(body, a.CACertDER()) {
		t.Fatal("ca.crt is not the CA in DER")
	}
	cert, err := x509.ParseCertificate(body)
	if err != nil || !cert.IsCA || !strings.Contains(cert.Subject.CommonName, "雁塔区") {
		t.Errorf("downloaded certificate: %v %+v", err, cert.Subject)
	}
	// The download is what a tablet trusts: the appliance's server
	// certificate verifies against it.
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if _, err := a.ServerCert().Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err != nil {
		t.Errorf("server certificate against the downloaded CA: %v", err)
	}

	resp, body = caGet(t, url+"/admin/ca.pem", admin)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pem-file" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="passgate-ca.pem"`) {
		t.Errorf("ca.pem: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	if b, _ := pem.Decode(body); b == nil || !bytes.Equal(b.Bytes, a.CACertDER()) {
		t.Errorf("ca.pem does not hold the CA: %.80q", body)
	}

	resp, body = caGet(t, url+"/admin/ca", admin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("help page: %s", resp.Status)
	}
	// The fingerprint an admin compares on the tablet.
	fp := hexColons(cert.Raw)
	if !strings.Contains(string(body), fp) || !strings.Contains(string(body), "/admin/ca.crt") {
		t.Errorf("help page lacks the fingerprint %s or the download path: %.400s", fp, body)
	}
}

// hexColons is the SHA-256 fingerprint as certificate viewers show it,
// computed apart from the code under test.
func hexColons(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

func TestCARoutes_Access(t *testing.T) {
	t.Parallel()
	s, url, _, staff := caTestServer(t)
	a, err := tlsca.LoadOrCreate(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.SetCA(a.CACertPEM())
	for _, p := range []string{"/admin/ca", "/admin/ca.crt", "/admin/ca.pem"} {
		if resp, _ := caGet(t, url+p, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("%s anonymous: %s %q, want 303 to login", p, resp.Status, resp.Header.Get("Location"))
		}
		if resp, body := caGet(t, url+p, staff); resp.StatusCode != http.StatusForbidden || bytes.Contains(body, a.CACertDER()) {
			t.Errorf("%s as staff: %s, want 403", p, resp.Status)
		}
	}
}

func TestCARoutes_NoCA(t *testing.T) {
	t.Parallel()
	s, url, admin, _ := caTestServer(t)
	check := func(when string) {
		t.Helper()
		for _, p := range []string{"/admin/ca", "/admin/ca.crt", "/admin/ca.pem"} {
			resp, body := caGet(t, url+p, admin)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "没有自建 CA") {
				t.Errorf("%s %s: %s %.200s, want 404 saying there is no local CA", when, p, resp.Status, body)
			}
		}
	}
	check("never set")

	// A certificate the admin provided, or garbage, is not offered.
	leafOnly, _ := tlsca.LoadOrCreate(t.TempDir(), []string{"localhost"}, time.Now())
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafOnly.ServerCert().Raw})
	for name, in := range map[string][]byte{
		"garbage":   []byte("not a certificate"),
		"empty":     {},
		"key block": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"bad DER":   []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"leaf":      leafPEM,
	} {
		s.SetCA(in)
		check("after SetCA(" + name + ")")
	}

	// Set, then cleared.
	s.SetCA(leafOnly.CACertPEM())
	if resp, _ := caGet(t, url+"/admin/ca.crt", admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("after SetCA: %s", resp.Status)
	}
	s.SetCA(nil)
	check("after SetCA(nil)")
}

// Two servers in one process (as in tests) never see each other's CA.
func TestCARoutes_PerServer(t *testing.T) {
	t.Parallel()
	s1, url1, admin1, _ := caTestServer(t)
	_, url2, admin2, _ := caTestServer(t)
	a, _ := tlsca.LoadOrCreate(t.TempDir(), []string{"localhost"}, time.Now())
	s1.SetCA(a.CACertPEM())
	if resp, _ := caGet(t, url1+"/admin/ca.crt", admin1); resp.StatusCode != http.StatusOK {
		t.Errorf("server with a CA: %s", resp.Status)
	}
	if resp, _ := caGet(t, url2+"/admin/ca.crt", admin2); resp.StatusCode != http.StatusNotFound {
		t.Errorf("server without a CA: %s, want 404", resp.Status)
	}
}

// FuzzParseCA: whatever SetCA is given, it is refused or yields a CA
// certificate, never a crash.
func FuzzParseCA(f *testing.F) {
	a, err := tlsca.LoadOrCreate(f.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.CACertPEM())
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := parseCA(in)
		if err != nil {
			return
		}
		cert, err := x509.ParseCertificate(c.der)
		if err != nil || !cert.IsCA {
			t.Fatalf("accepted %v %v", cert, err)
		}
	})
}
