// Package tlsca gives the appliance HTTPS without the internet: a local
// certificate authority created at first start, and a server certificate
// it signs for the appliance's own names and addresses. Browsers grant the
// camera only to a secure context, so a tablet on the LAN that trusts this
// CA (an admin installs it once) can scan with its camera.
//
// Everything lives in one folder, "tls" under the data directory:
//
//	ca.crt, ca.key          the CA (10 years; the key never leaves the box)
//	server.crt, server.key  the server certificate (≤ 397 days, reissued
//	                        automatically before it expires and when the
//	                        appliance gains a name or address)
//
// Keys are P-256 ECDSA, written 0600 in a 0700 folder; every file is
// written atomically so a power cut never leaves half a key behind.
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
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Validity periods and limits.
const (
	// CAValidity is how long the local CA lives. Tablets install it once;
	// a short life would send an admin round every tablet again.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity keeps the server certificate under the 398 days
	// browsers accept for any certificate (Apple and Chrome reject longer
	// ones even from a user-installed CA). The hour of backdating for
	// clock skew is included.
	ServerValidity = 396 * 24 * time.Hour
	// RenewBefore is how close to its end a certificate is replaced.
	RenewBefore = 30 * 24 * time.Hour
	// backdate covers tablets whose clock runs a little behind.
	backdate = time.Hour
	// maxPEMFile bounds every certificate or key file read: a real one
	// is a few kilobytes, a chain a few more.
	maxPEMFile = 1 << 20
)

// File names inside the "tls" folder.
const (
	Subdir         = "tls"
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// Authority is the appliance's local CA with the server certificate it
// issued. It is safe for concurrent use: handshakes read the current
// certificate while Refresh replaces it.
type Authority struct {
	dir    string // the "tls" folder
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte

	mu     sync.Mutex // serialises Refresh (file writes)
	server atomic.Pointer[tls.Certificate]
}

// LoadOrCreate loads the local CA from dir/tls, creating it at first
// start, and makes sure the server certificate covers hosts (DNS names or
// IP addresses, see DefaultHosts) and is not about to expire. The CA is
// named after the machine's host name.
func LoadOrCreate(dir string, hosts []string, now time.Time) (*Authority, error) {
	h, _ := os.Hostname()
	return LoadOrCreateNamed(dir, h, hosts, now)
}

// LoadOrCreateNamed is LoadOrCreate with the name shown in the CA's
// subject ("passgate local CA <name>", for example the district's name),
// which is what an admin sees in a tablet's list of trusted certificates.
// The name only matters when the CA is created.
func LoadOrCreateNamed(dir, name string, hosts []string, now time.Time) (*Authority, error) {
	norm, err := normalizeHosts(hosts)
	if err != nil {
		return nil, err
	}
	tdir := filepath.Join(dir, Subdir)
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("create tls folder: %w", err)
	}
	// MkdirAll leaves an existing folder's mode alone; the keys inside
	// must not be listable by other users either way.
	if err := os.Chmod(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict tls folder: %w", err)
	}
	a := &Authority{dir: tdir}
	if err := a.loadOrCreateCA(name, now); err != nil {
		return nil, err
	}
	if err := a.loadServer(); err != nil {
		return nil, err
	}
	if _, err := a.refresh(norm, now); err != nil {
		return nil, err
	}
	return a, nil
}

// loadOrCreateCA reads the CA, or creates it when ca.crt does not exist.
// The certificate is written after the key, so it marks a complete CA: a
// key without a certificate is an interrupted first start and is
// replaced. A certificate that cannot be used is an error, never silently
// replaced, because every tablet that installed it would stop trusting
// the appliance.
func (a *Authority) loadOrCreateCA(name string, now time.Time) error {
	certPath := filepath.Join(a.dir, caCertFile)
	keyPath := filepath.Join(a.dir, caKeyFile)
	certPEM, err := readBounded(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return a.createCA(name, now)
	}
	if err != nil {
		return fmt.Errorf("read local CA: %w", err)
	}
	keyPEM, err := readBounded(keyPath)
	if err != nil {
		return fmt.Errorf("read local CA key (delete %s to create a new CA, then install it on the tablets again): %w", a.dir, err)
	}
	cert, key, err := parseECPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("local CA in %s (delete the folder to create a new CA, then install it on the tablets again): %w", a.dir, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return fmt.Errorf("local CA %s: the certificate is not a CA", certPath)
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("local CA %s expired on %s: delete %s to create a new one, then install it on the tablets again", certPath, cert.NotAfter.Format(time.DateOnly), a.dir)
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	return nil
}

// createCA makes a new self-signed CA that may sign server certificates
// only (path length 0: it can never create another CA).
func (a *Authority) createCA(name string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	cn := "passgate local CA"
	if name = strings.TrimSpace(name); name != "" {
		cn += " " + name
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"passgate"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: the certificate's presence marks a complete CA.
	if err := writeAtomic(filepath.Join(a.dir, caKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(a.dir, caCertFile), certPEM, 0o644); err != nil {
		return err
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	return nil
}

// loadServer reads the last server certificate if it is whole and was
// issued by this CA; anything else leaves none, and Refresh issues one.
// The server certificate is derived data: it is never worth refusing to
// start over it.
func (a *Authority) loadServer() error {
	certPEM, err := readBounded(filepath.Join(a.dir, serverCertFile))
	if err != nil {
		return nil
	}
	keyPEM, err := readBounded(filepath.Join(a.dir, serverKeyFile))
	if err != nil {
		return nil
	}
	cert, key, err := parseECPair(certPEM, keyPEM)
	if err != nil {
		return nil
	}
	if cert.CheckSignatureFrom(a.caCert) != nil {
		return nil // a CA was recreated: the old certificate is worthless
	}
	a.server.Store(&tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert})
	return nil
}

// Refresh reissues the server certificate when it expires within
// RenewBefore or does not cover every one of hosts, and reports whether
// it did. Handshakes in progress keep the old certificate; new ones get
// the new one. Call it now and then (daily is plenty) with the current
// DefaultHosts, so a new address or a long uptime needs no restart.
func (a *Authority) Refresh(hosts []string, now time.Time) (bool, error) {
	norm, err := normalizeHosts(hosts)
	if err != nil {
		return false, err
	}
	return a.refresh(norm, now)
}

func (a *Authority) refresh(hosts []string, now time.Time) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.server.Load(); cur != nil && !needsReissue(cur.Leaf, hosts, now) {
		return false, nil
	}
	if err := a.issueServer(hosts, now); err != nil {
		return false, err
	}
	return true, nil
}

// needsReissue reports whether leaf is near its end, not yet valid, or
// misses one of hosts.
func needsReissue(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Add(RenewBefore).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return true
	}
	for _, h := range hosts {
		if !covers(leaf, h) {
			return true
		}
	}
	return false
}

// covers reports whether leaf names host exactly (no wildcards are ever
// issued here).
func covers(leaf *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return slices.ContainsFunc(leaf.IPAddresses, ip.Equal)
	}
	return slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, host) })
}

// issueServer signs a new server certificate for hosts with a new key,
// writes it and makes it the one handshakes use.
func (a *Authority) issueServer(hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"passgate"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(ServerValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	// The CA's validity bounds the leaf's: a chain is only as good as
	// its shortest link.
	if tmpl.NotAfter.After(a.caCert.NotAfter) {
		tmpl.NotAfter = a.caCert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, &key.PublicKey, a.caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse new server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	// Key first, as for the CA: a certificate on disk always has its key.
	if err := writeAtomic(filepath.Join(a.dir, serverKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeAtomic(filepath.Join(a.dir, serverCertFile), certPEM, 0o644); err != nil {
		return err
	}
	a.server.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf})
	return nil
}

// Maintain calls Refresh with hosts() every interval until ctx ends, so
// an appliance that runs for a year, or gains an address, keeps a valid
// certificate without a restart. Reissues are logged at Info, failures at
// Error (the old certificate stays in use).
func (a *Authority) Maintain(ctx context.Context, every time.Duration, hosts func() []string, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			again, err := a.Refresh(hosts(), now)
			if err != nil {
				log.Error("renew https certificate", "err", err)
			} else if again {
				log.Info("https certificate reissued", "hosts", a.ServerCert().DNSNames, "ips", a.ServerCert().IPAddresses, "until", a.ServerCert().NotAfter)
			}
		}
	}
}

// TLSConfig returns a server configuration that presents the current
// server certificate; a Refresh takes effect at the next handshake.
func (a *Authority) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.server.Load(), nil
		},
	}
}

// CACertPEM returns the CA certificate in PEM, for download and for
// clients that should trust the appliance.
func (a *Authority) CACertPEM() []byte { return bytes.Clone(a.caPEM) }

// CACertDER returns the CA certificate in DER, the form Android and iOS
// install from a download.
func (a *Authority) CACertDER() []byte { return bytes.Clone(a.caCert.Raw) }

// ServerCert returns the server certificate handshakes present now.
func (a *Authority) ServerCert() *x509.Certificate { return a.server.Load().Leaf }

// Dir returns the folder holding the CA and server files.
func (a *Authority) Dir() string { return a.dir }

// DefaultHosts lists the names and addresses a tablet may use to reach
// this machine: localhost, the host name and its mDNS name
// (<first label>.local), the loopback addresses and every address of an
// interface that is up. Link-local addresses are left out: they carry an
// interface zone a certificate cannot hold, and nobody types them.
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	// A host name no certificate can hold (a space, say) is left out
	// rather than failing the whole list.
	if h, err := os.Hostname(); err == nil {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h != "localhost" && validDNSName(h) {
			hosts = append(hosts, h)
			label, _, _ := strings.Cut(h, ".")
			hosts = append(hosts, label+".local")
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return dedupe(hosts)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsUnspecified() {
				continue
			}
			hosts = append(hosts, ipn.IP.String())
		}
	}
	return dedupe(hosts)
}

func dedupe(hosts []string) []string {
	seen := map[string]bool{}
	out := hosts[:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// maxHostLen bounds one name (the DNS limit) and maxHosts the list: a
// certificate with thousands of names would slow every handshake.
const (
	maxHostLen = 253
	maxHosts   = 256
)

// normalizeHosts turns hosts into the form certificates hold: IP
// addresses in canonical text, DNS names in lower case without a final
// dot, no duplicates, in the given order. It refuses what no certificate
// may name, with the offending entry in the error.
func normalizeHosts(hosts []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if len(h) > maxHostLen {
			return nil, fmt.Errorf("tls host %.40q...: longer than %d characters", h, maxHostLen)
		}
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		} else {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if !validDNSName(h) {
				return nil, fmt.Errorf("tls host %q: not an IP address or a DNS name (letters, digits, '-' and '.')", h)
			}
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("tls hosts: no host name or address to certify")
	}
	if len(out) > maxHosts {
		return nil, fmt.Errorf("tls hosts: %d names, at most %d", len(out), maxHosts)
	}
	return out, nil
}

// validDNSName accepts LDH labels of 1–63 characters; underscores are
// tolerated because some LAN DHCP servers hand out such host names.
func validDNSName(s string) bool {
	if s == "" || len(s) > maxHostLen {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// LoadProvided loads a certificate and key the admin provides (PEM files,
// the certificate optionally followed by its chain) and returns a server
// configuration for them. Errors say which file is wrong and how.
func LoadProvided(certFile, keyFile string) (*tls.Config, error) {
	return loadProvided(certFile, keyFile, time.Now())
}

func loadProvided(certFile, keyFile string, now time.Time) (*tls.Config, error) {
	certPEM, err := readBounded(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	keyPEM, err := readBounded(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	cert, err := ParseKeyPair(certPEM, keyPEM, now)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// ParseKeyPair parses a PEM certificate (with its chain) and its PEM
// private key and checks that they belong together and that the
// certificate is valid at now. Input longer than 1 MiB is refused.
func ParseKeyPair(certPEM, keyPEM []byte, now time.Time) (tls.Certificate, error) {
	if len(certPEM) > maxPEMFile || len(keyPEM) > maxPEMFile {
		return tls.Certificate{}, fmt.Errorf("larger than %d bytes: not a certificate or key file", maxPEMFile)
	}
	if !hasPEMBlock(certPEM, "CERTIFICATE") {
		return tls.Certificate{}, errors.New("the certificate file holds no PEM CERTIFICATE block")
	}
	if !hasPEMBlock(keyPEM, "PRIVATE KEY") {
		return tls.Certificate{}, errors.New("the key file holds no PEM PRIVATE KEY block (is it encrypted, or the certificate twice?)")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return tls.Certificate{}, errors.New("the private key does not match the certificate")
		}
		return tls.Certificate{}, fmt.Errorf("parse: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil { // X509KeyPair fills Leaf since Go 1.23; stay safe
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("parse: %w", err)
		}
		cert.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("the certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("the certificate is not valid before %s (check the clock)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	// A lone self-signed certificate is often marked CA (openssl req
	// -x509 does so) and is the admin's choice; a CA certificate heading
	// a chain means the file lists the chain the wrong way round.
	if leaf.IsCA && len(cert.Certificate) > 1 {
		return tls.Certificate{}, errors.New("the first certificate is a CA certificate; put the server certificate first")
	}
	return cert, nil
}

// hasPEMBlock reports whether data holds a PEM block whose type ends in
// suffix ("PRIVATE KEY" matches EC, RSA and PKCS#8 keys).
func hasPEMBlock(data []byte, suffix string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, suffix) {
			return true
		}
	}
}

// parseECPair parses one of this package's own certificate and key files
// and checks that they belong together.
func parseECPair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("certificate file holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("key file holds no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, nil, errors.New("key does not match certificate")
	}
	return cert, key, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// randomSerial returns a positive 128-bit serial: unique without keeping
// a counter, as RFC 5280 allows (at most 20 octets).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// readBounded reads a whole file of at most maxPEMFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err // *PathError: names the file
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a certificate or key file", path, maxPEMFile)
	}
	return b, nil
}

// writeAtomic writes data to path through a temporary file in the same
// folder, synced and renamed over path, then syncs the folder: after a
// crash path holds either the old or the new content, never a mix. The
// temporary file has mode perm before any byte of a key reaches it.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
