package web

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"passgate/web/view"
)

// caCert is the CA certificate a Server offers, in both encodings.
type caCert struct {
	pem, der    []byte
	fingerprint string // SHA-256 of the DER, colon-separated hex
}

// cas holds each Server's CA certificate. It lives here rather than in
// Server so that this area stays in its own file; main builds one Server
// per process, and tests build many, which a map keyed by the Server keeps
// apart. SetCA(nil) removes the entry.
var cas = struct {
	sync.RWMutex
	m map[*Server]*caCert
}{m: map[*Server]*caCert{}}

// SetCA sets the local CA certificate (PEM) that admins download for the
// tablets. Leave it unset, or set nil, when HTTPS is off or uses a
// certificate the admin provided: the download routes then answer 404.
// A PEM without a CA certificate is logged and treated as none.
func (s *Server) SetCA(caPEM []byte) {
	cas.Lock()
	defer cas.Unlock()
	delete(cas.m, s)
	if caPEM == nil {
		return
	}
	c, err := parseCA(caPEM)
	if err != nil {
		s.log.Error("local CA certificate not offered for download", "err", err)
		return
	}
	cas.m[s] = c
}

// parseCA takes the first certificate of caPEM, which must be a CA.
func parseCA(caPEM []byte) (*caCert, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	sum := sha256.Sum256(cert.Raw)
	hex := make([]string, len(sum))
	for i, x := range sum {
		hex[i] = fmt.Sprintf("%02X", x)
	}
	return &caCert{
		pem:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		der:         cert.Raw,
		fingerprint: strings.Join(hex, ":"),
	}, nil
}

// ca returns the Server's CA certificate, or nil.
func (s *Server) ca() *caCert {
	cas.RLock()
	defer cas.RUnlock()
	return cas.m[s]
}

// handleCAHelp tells the admin how to install the CA on a tablet, with
// the fingerprint to compare: the download may travel over plain HTTP on
// the LAN, and the fingerprint is what proves it was not swapped.
func (s *Server) handleCAHelp(w http.ResponseWriter, r *http.Request) {
	c := s.ca()
	if c == nil {
		s.noCA(w, r)
		return
	}
	p := s.page(r, "admin.ca")
	s.render(w, r, http.StatusOK, view.Message(p, p.T.T("admin.ca.howto", caFileName, c.fingerprint)))
}

// caFileName is the downloaded file's name: ".crt" is what Android and
// iOS offer to install.
const caFileName = "passgate-ca.crt"

// handleCACert serves the CA in DER under the type phones install from.
func (s *Server) handleCACert(w http.ResponseWriter, r *http.Request) {
	c := s.ca()
	if c == nil {
		s.noCA(w, r)
		return
	}
	serveCAFile(w, "application/x-x509-ca-cert", caFileName, c.der)
}

// handleCAPEM serves the CA in PEM, for desktops and tools.
func (s *Server) handleCAPEM(w http.ResponseWriter, r *http.Request) {
	c := s.ca()
	if c == nil {
		s.noCA(w, r)
		return
	}
	serveCAFile(w, "application/x-pem-file", "passgate-ca.pem", c.pem)
}

func serveCAFile(w http.ResponseWriter, contentType, name string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	// A stale copy after a CA was recreated would install the wrong one.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// noCA answers 404 with a page that says why there is nothing to install.
func (s *Server) noCA(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, &Error{Code: ENotFound, Key: "admin.ca.none"})
}
