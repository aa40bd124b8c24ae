package tlsca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	t0        = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	testHosts = []string{"localhost", "gate1", "gate1.local", "127.0.0.1", "::1", "192.168.1.20"}
)

// mustAuthority creates an authority in a fresh data directory.
func mustAuthority(t *testing.T, hosts []string, now time.Time) (*Authority, string) {
	t.Helper()
	dir := t.TempDir()
	a, err := LoadOrCreateNamed(dir, "雁塔区", hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadOrCreate_Files(t *testing.T) {
	a, dir := mustAuthority(t, testHosts, t0)
	tdir := filepath.Join(dir, "tls")
	if got := mode(t, tdir); got != 0o700 {
		t.Errorf("tls folder mode %o, want 700", got)
	}
	for name, want := range map[string]os.FileMode{"ca.key": 0o600, "server.key": 0o600, "ca.crt": 0o644, "server.crt": 0o644} {
		if got := mode(t, filepath.Join(tdir, name)); got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	ents, _ := os.ReadDir(tdir)
	if len(ents) != 4 {
		t.Errorf("tls folder holds %d entries, want 4 (no temporary files left)", len(ents))
	}

	ca, err := x509.ParseCertificate(a.CACertDER())
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v MaxPathLen=%d zero=%v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %b", ca.KeyUsage)
	}
	if ca.Subject.CommonName != "passgate local CA 雁塔区" {
		t.Errorf("CA name %q", ca.Subject.CommonName)
	}
	if d := ca.NotAfter.Sub(t0); d < 9*365*24*time.Hour || d > 11*365*24*time.Hour {
		t.Errorf("CA lives %v, want about 10 years", d)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T", ca.PublicKey)
	}
	b, _ := pem.Decode(a.CACertPEM())
	if b == nil || !bytes.Equal(b.Bytes, a.CACertDER()) {
		t.Error("CACertPEM does not hold CACertDER")
	}

	srv := a.ServerCert()
	if srv.IsCA || len(srv.ExtKeyUsage) != 1 || srv.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("server cert: IsCA=%v EKU=%v", srv.IsCA, srv.ExtKeyUsage)
	}
	if life := srv.NotAfter.Sub(srv.NotBefore); life > 397*24*time.Hour {
		t.Errorf("server cert lives %v, browsers accept at most 397 days", life)
	}
	if srv.NotBefore.After(t0) {
		t.Errorf("server cert not valid at creation: %v", srv.NotBefore)
	}
}

func TestLoadOrCreate_ReloadKeepsCA(t *testing.T) {
	a, dir := mustAuthority(t, testHosts, t0)
	b, err := LoadOrCreate(dir, testHosts, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CACertDER(), b.CACertDER()) {
		t.Error("reload created a new CA")
	}
	if !bytes.Equal(a.ServerCert().Raw, b.ServerCert().Raw) {
		t.Error("reload reissued a server certificate that was still good")
	}
	// The loaded key really is the CA's: it signs what verifies.
	if _, err := b.Refresh(append(testHosts, "extra.example"), t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.ServerCert().CheckSignatureFrom(mustParse(t, a.CACertDER())); err != nil {
		t.Errorf("certificate issued after reload does not verify against the original CA: %v", err)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify checks the server certificate for host against a pool holding
// only the CA, as a tablet that installed it does.
func verify(a *Authority, host string, now time.Time) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CACertPEM())
	_, err := a.ServerCert().Verify(x509.VerifyOptions{
		DNSName: host, Roots: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestServerCert_VerifiesForEveryHost(t *testing.T) {
	a, _ := mustAuthority(t, testHosts, t0)
	for _, h := range append(testHosts, "GATE1.local", "0:0:0:0:0:0:0:1") {
		if err := verify(a, h, t0); err != nil {
			t.Errorf("host %s: %v", h, err)
		}
	}
	for _, h := range []string{"example.com", "gate2.local", "192.168.1.21", "10.0.0.1"} {
		if err := verify(a, h, t0); err == nil {
			t.Errorf("host %s verified, but it was never certified", h)
		}
	}
	// A CA made elsewhere does not vouch for this appliance.
	other, _ := mustAuthority(t, testHosts, t0)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(other.CACertPEM())
	if _, err := a.ServerCert().Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool, CurrentTime: t0}); err == nil {
		t.Error("server certificate verified against another appliance's CA")
	}
}

func TestRefresh_RenewsBeforeExpiry(t *testing.T) {
	a, dir := mustAuthority(t, testHosts, t0)
	first := a.ServerCert()

	// Well inside the validity: nothing to do.
	if again, err := a.Refresh(testHosts, t0.Add(100*24*time.Hour)); err != nil || again {
		t.Fatalf("Refresh at 100 days: reissued=%v err=%v", again, err)
	}
	// 29 days before the end: renewed, by the same CA.
	late := first.NotAfter.Add(-29 * 24 * time.Hour)
	again, err := a.Refresh(testHosts, late)
	if err != nil || !again {
		t.Fatalf("Refresh 29 days before expiry: reissued=%v err=%v", again, err)
	}
	if a.ServerCert().SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the certificate in use was not swapped")
	}
	if !a.ServerCert().NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate ends %v, not after the old one's %v", a.ServerCert().NotAfter, first.NotAfter)
	}
	for _, h := range testHosts {
		if err := verify(a, h, late); err != nil {
			t.Errorf("renewed certificate, host %s: %v", h, err)
		}
	}
	// A restart at that time loads the renewed certificate, not the old.
	b, err := LoadOrCreate(dir, testHosts, late)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.ServerCert().Raw, a.ServerCert().Raw) || !bytes.Equal(b.CACertDER(), a.CACertDER()) {
		t.Error("restart after renewal did not load the renewed certificate with the same CA")
	}

	// A restart long after expiry (the box sat in a cupboard) renews at
	// load.
	c, err := LoadOrCreate(dir, testHosts, late.Add(500*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(c, "localhost", late.Add(500*24*time.Hour)); err != nil {
		t.Errorf("after a long pause: %v", err)
	}
}

func TestRefresh_NewHostReissuesWithSameCA(t *testing.T) {
	a, dir := mustAuthority(t, testHosts, t0)
	ca := a.CACertDER()
	first := a.ServerCert()

	// Same hosts in another order and case: covered, nothing to do.
	if again, err := a.Refresh([]string{"192.168.1.20", "GATE1", "localhost"}, t0); err != nil || again {
		t.Fatalf("subset of hosts: reissued=%v err=%v", again, err)
	}
	// DHCP gave the box a new address.
	hosts := append(testHosts[:len(testHosts):len(testHosts)], "10.1.2.3", "gate.school.example")
	b, err := LoadOrCreate(dir, hosts, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.CACertDER(), ca) {
		t.Fatal("a new host created a new CA: every tablet would need it again")
	}
	if bytes.Equal(b.ServerCert().Raw, first.Raw) {
		t.Fatal("a new host did not reissue the server certificate")
	}
	for _, h := range hosts {
		if err := verify(b, h, t0.Add(time.Hour)); err != nil {
			t.Errorf("host %s: %v", h, err)
		}
	}
}

func TestLoadOrCreate_DamagedFiles(t *testing.T) {
	t.Run("CorruptCA", func(t *testing.T) {
		_, dir := mustAuthority(t, testHosts, t0)
		p := filepath.Join(dir, "tls", "ca.crt")
		if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreate(dir, testHosts, t0)
		if err == nil || !strings.Contains(err.Error(), "delete") {
			t.Fatalf("corrupt CA: %v, want an error telling how to recover", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "garbage" {
			t.Error("a corrupt CA was silently replaced")
		}
	})
	t.Run("CAKeyMissing", func(t *testing.T) {
		_, dir := mustAuthority(t, testHosts, t0)
		os.Remove(filepath.Join(dir, "tls", "ca.key"))
		if _, err := LoadOrCreate(dir, testHosts, t0); err == nil {
			t.Fatal("CA without its key loaded")
		}
	})
	t.Run("CAKeyMismatch", func(t *testing.T) {
		_, dir := mustAuthority(t, testHosts, t0)
		_, dir2 := mustAuthority(t, testHosts, t0)
		key2, _ := os.ReadFile(filepath.Join(dir2, "tls", "ca.key"))
		os.WriteFile(filepath.Join(dir, "tls", "ca.key"), key2, 0o600)
		_, err := LoadOrCreate(dir, testHosts, t0)
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("CA with another CA's key: %v", err)
		}
	})
	t.Run("InterruptedFirstStart", func(t *testing.T) {
		// Power lost after the CA key was written, before its
		// certificate: the next start creates the CA afresh.
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
		os.WriteFile(filepath.Join(dir, "tls", "ca.key"), []byte("half"), 0o600)
		a, err := LoadOrCreate(dir, testHosts, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(a, "localhost", t0); err != nil {
			t.Error(err)
		}
	})
	t.Run("CorruptServerCertReissued", func(t *testing.T) {
		a, dir := mustAuthority(t, testHosts, t0)
		os.WriteFile(filepath.Join(dir, "tls", "server.crt"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
		b, err := LoadOrCreate(dir, testHosts, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.CACertDER(), b.CACertDER()) {
			t.Error("a damaged server certificate replaced the CA")
		}
		if err := verify(b, "gate1.local", t0); err != nil {
			t.Error(err)
		}
	})
	t.Run("LooseFolderTightened", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "tls"), 0o755)
		if _, err := LoadOrCreate(dir, testHosts, t0); err != nil {
			t.Fatal(err)
		}
		if got := mode(t, filepath.Join(dir, "tls")); got != 0o700 {
			t.Errorf("folder mode %o, want 700", got)
		}
	})
}

func TestNormalizeHosts(t *testing.T) {
	ok := []struct {
		in   []string
		want string
	}{
		{[]string{"Gate1.Local.", " localhost ", "gate1.local"}, "gate1.local localhost"},
		{[]string{"::1", "0:0:0:0:0:0:0:1", "127.0.0.1", ""}, "::1 127.0.0.1"},
		{[]string{"dhcp_host-7"}, "dhcp_host-7"},
	}
	for _, c := range ok {
		got, err := normalizeHosts(c.in)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("normalizeHosts(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := [][]string{
		nil,
		{"", "  "},
		{"gate 1"},
		{"*.example.com"},
		{"-gate"},
		{"gate..local"},
		{"fe80::1%eth0"},
		{"http://gate1"},
		{"gate1:8443"},
		{strings.Repeat("a", 64) + ".local"},
		{strings.Repeat("a.", 130) + "b"},
		{"gate\x00"},
		{"网关.local"},
	}
	for _, in := range bad {
		if got, err := normalizeHosts(in); err == nil {
			t.Errorf("normalizeHosts(%q) = %q, want an error", in, got)
		}
	}
	many := make([]string, maxHosts+1)
	for i := range many {
		many[i] = "h" + big.NewInt(int64(i)).String()
	}
	if _, err := normalizeHosts(many); err == nil {
		t.Error("more than maxHosts names accepted")
	}
	if _, err := LoadOrCreate(t.TempDir(), []string{"bad host"}, t0); err == nil {
		t.Error("LoadOrCreate accepted a bad host")
	}
}

func TestDefaultHosts(t *testing.T) {
	hosts := DefaultHosts()
	for _, want := range []string{"localhost", "127.0.0.1", "::1"} {
		found := false
		for _, h := range hosts {
			found = found || h == want
		}
		if !found {
			t.Errorf("DefaultHosts() = %q, missing %s", hosts, want)
		}
	}
	norm, err := normalizeHosts(hosts)
	if err != nil {
		t.Fatalf("DefaultHosts() = %q: %v", hosts, err)
	}
	if len(norm) != len(hosts) {
		t.Errorf("DefaultHosts() has duplicates or unnormalised entries: %q", hosts)
	}
	t.Logf("DefaultHosts() = %q", hosts)
}

// serveTLS runs an HTTPS server with cfg on 127.0.0.1:0, as serve.go does,
// and returns its address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok "+r.Proto)
		}),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 5 * time.Second,
		// Refused handshakes are what several tests expect.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func clientTrusting(caPEM []byte, serverName string) *http.Client {
	pool := x509.NewCertPool()
	if caPEM != nil {
		pool.AppendCertsFromPEM(caPEM)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
		ForceAttemptHTTP2: true,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestTLSHandshake(t *testing.T) {
	a, _ := mustAuthority(t, testHosts, time.Now())
	addr := serveTLS(t, a.TLSConfig())
	_, port, _ := net.SplitHostPort(addr)

	for _, name := range []string{"", "localhost", "gate1.local"} {
		// name "" dials by IP, so the client sends no server name and
		// checks the address; the others send SNI as a tablet does.
		c := clientTrusting(a.CACertPEM(), name)
		resp, err := c.Get("https://127.0.0.1:" + port + "/")
		if err != nil {
			t.Fatalf("client trusting the CA, server name %q: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok HTTP/2") {
			t.Errorf("server name %q: %d %q, want 200 over HTTP/2", name, resp.StatusCode, body)
		}
		if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS version %x", resp.TLS.Version)
		}
	}

	// Without the CA (the system roots only) the appliance is not trusted.
	sys := &http.Client{Timeout: 5 * time.Second}
	if _, err := sys.Get("https://127.0.0.1:" + port + "/"); err == nil {
		t.Error("a client without the local CA trusted the server")
	}
	// Trusting the CA does not make a name the certificate lacks valid.
	if _, err := clientTrusting(a.CACertPEM(), "example.com").Get("https://127.0.0.1:" + port + "/"); err == nil {
		t.Error("a name outside the certificate was accepted")
	}
	// Old protocol versions are refused.
	old := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("TLS 1.1 handshake succeeded")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 refused for another reason: %v", err)
	}
}

func TestTLSHandshake_RenewalSwapsCertificate(t *testing.T) {
	now := time.Now()
	a, _ := mustAuthority(t, testHosts, now)
	addr := serveTLS(t, a.TLSConfig())
	serial := func() *big.Int {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(a.CACertPEM())
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := serial()
	if again, err := a.Refresh(append(testHosts, "10.9.9.9"), now); err != nil || !again {
		t.Fatalf("Refresh: %v %v", again, err)
	}
	if after := serial(); after.Cmp(before) == 0 || after.Cmp(a.ServerCert().SerialNumber) != 0 {
		t.Errorf("handshake after renewal presented serial %v, want the new %v", after, a.ServerCert().SerialNumber)
	}
}

// testPair makes a self-signed certificate and key in PEM, valid from nb
// to na.
func testPair(t testing.TB, nb, na time.Time, isCA bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "gate.example"},
		DNSNames: []string{"gate.example"}, NotBefore: nb, NotAfter: na,
		BasicConstraintsValid: true, IsCA: isCA,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func TestLoadProvided(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodCert, goodKey := testPair(t, t0.Add(-time.Hour), t0.Add(90*24*time.Hour), false)
	_, otherKey := testPair(t, t0.Add(-time.Hour), t0.Add(90*24*time.Hour), false)
	oldCert, oldKey := testPair(t, t0.Add(-400*24*time.Hour), t0.Add(-24*time.Hour), false)
	futCert, futKey := testPair(t, t0.Add(24*time.Hour), t0.Add(90*24*time.Hour), false)
	caCert, caKey := testPair(t, t0.Add(-time.Hour), t0.Add(90*24*time.Hour), true)
	cert := write("cert.pem", goodCert)
	key := write("key.pem", goodKey)

	if cfg, err := loadProvided(cert, key, t0); err != nil {
		t.Fatalf("good pair: %v", err)
	} else if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Errorf("config: min %x, %d certificates", cfg.MinVersion, len(cfg.Certificates))
	}

	// A lone self-signed certificate marked CA, as openssl req -x509
	// makes, is accepted.
	if _, err := loadProvided(write("selfca.pem", caCert), write("selfca.key", caKey), t0); err != nil {
		t.Errorf("self-signed certificate marked CA: %v", err)
	}

	cases := []struct {
		name, cert, key, want string
	}{
		{"MissingCert", filepath.Join(dir, "nope.pem"), key, "tls certificate: open"},
		{"MissingKey", cert, filepath.Join(dir, "nope.key"), "tls key: open"},
		{"GarbageCert", write("garbage.pem", []byte("not a certificate\x00\xff")), key, "no PEM CERTIFICATE"},
		{"GarbageKey", cert, write("garbage.key", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), "parse"},
		{"KeyIsCert", cert, write("certaskey.pem", goodCert), "no PEM PRIVATE KEY"},
		{"CertIsKey", write("keyascert.pem", goodKey), key, "no PEM CERTIFICATE"},
		{"Mismatch", cert, write("other.key", otherKey), "does not match"},
		{"Expired", write("old.pem", oldCert), write("old.key", oldKey), "expired on 2026-11-24"},
		{"NotYetValid", write("fut.pem", futCert), write("fut.key", futKey), "not valid before"},
		{"CAFirst", write("ca.pem", append(caCert, goodCert...)), write("ca.key", caKey), "CA certificate"},
		{"Huge", write("huge.pem", bytes.Repeat([]byte("A"), maxPEMFile+1)), key, "larger than"},
		{"Directory", dir, key, "tls certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadProvided(c.cert, c.key, t0)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
}

func TestLoadProvided_Handshake(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c, k := testPair(t, now.Add(-time.Hour), now.Add(24*time.Hour), false)
	os.WriteFile(filepath.Join(dir, "c.pem"), c, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), k, 0o600)
	cfg, err := LoadProvided(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	_, port, _ := net.SplitHostPort(addr)
	resp, err := clientTrusting(c, "gate.example").Get("https://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := clientTrusting(nil, "gate.example").Get("https://127.0.0.1:" + port + "/"); err == nil {
		t.Error("client without the certificate trusted it")
	}
}

func TestWriteAtomic_ReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := writeAtomic(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(p, []byte("new content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new content" {
		t.Errorf("content %q", b)
	}
	// A write that cannot land leaves the old file and no temporary.
	if err := writeAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries, want 1", len(ents))
	}
	if !errors.Is(func() error { _, err := os.Stat(filepath.Join(dir, "missing")); return err }(), os.ErrNotExist) {
		t.Error("folder created")
	}
}

// FuzzParseKeyPair feeds arbitrary certificate and key files: they must
// be refused with an error, never crash.
func FuzzParseKeyPair(f *testing.F) {
	c, k := testPair(f, t0.Add(-time.Hour), t0.Add(time.Hour), false)
	f.Add(c, k)
	f.Add(k, c)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\n\n-----END EC PRIVATE KEY-----\n"))
	f.Add(c[:len(c)/2], k[:len(k)/2])
	f.Add([]byte{}, []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		got, err := ParseKeyPair(cert, key, t0)
		if err == nil && (got.Leaf == nil || got.PrivateKey == nil) {
			t.Fatal("accepted a pair without leaf or key")
		}
		ParseKeyPair(cert, key, t0.Add(time.Hour*2))
		parseECPair(cert, key)
	})
}

// FuzzNormalizeHosts: any host list either normalises to names a
// certificate can hold or is refused.
func FuzzNormalizeHosts(f *testing.F) {
	for _, s := range []string{"localhost", "gate1.local.", "::1", "fe80::1%eth0", "a b", "*.x", "网关", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalizeHosts(strings.Split(s, ","))
		if err != nil {
			return
		}
		for _, h := range got {
			if net.ParseIP(h) == nil && !validDNSName(h) {
				t.Fatalf("normalised %q to unusable %q", s, h)
			}
		}
	})
}

func TestMaintain_PicksUpNewAddress(t *testing.T) {
	a, _ := mustAuthority(t, testHosts, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	hosts := append(testHosts[:len(testHosts):len(testHosts)], "10.7.7.7")
	go func() {
		a.Maintain(ctx, 5*time.Millisecond, func() []string { return hosts }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for verify(a, "10.7.7.7", time.Now()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Maintain did not reissue for the new address")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Maintain did not stop with its context")
	}
}

func BenchmarkLoadOrCreate_FirstStart(b *testing.B) {
	for b.Loop() {
		if _, err := LoadOrCreate(b.TempDir(), testHosts, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadOrCreate_Restart(b *testing.B) {
	dir := b.TempDir()
	if _, err := LoadOrCreate(dir, testHosts, t0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := LoadOrCreate(dir, testHosts, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is a full TLS 1.3 handshake against TLSConfig over
// loopback: the cost a tablet pays per new connection.
func BenchmarkHandshake(b *testing.B) {
	a, err := LoadOrCreate(b.TempDir(), testHosts, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", a.TLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CACertPEM())
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
