package districtsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PinSize is the length of a TLS pin: the first bytes of the SHA-256 of
// the SubjectPublicKeyInfo of the certificate the hub's chain ends in.
const PinSize = 16

// SPKIPin is the pin of a certificate.
func SPKIPin(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return sum[:PinSize]
}

// PinOfDER is the pin of a DER certificate.
func PinOfDER(der []byte) ([]byte, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("hub certificate: %w", err)
	}
	return SPKIPin(c), nil
}

// CallError is an error answer from the hub: its HTTP status and body.
type CallError struct {
	Status int
	Err    Error
}

func (e *CallError) Error() string {
	if e.Err.Message != "" {
		return fmt.Sprintf("hub answered %d %s: %s", e.Status, e.Err.Code, e.Err.Message)
	}
	return fmt.Sprintf("hub answered %d %s", e.Status, e.Err.Code)
}

// ErrPinMismatch is returned when the hub presents a certificate chain
// that does not lead to the pinned certificate: another machine is
// answering at the hub's address, or the code belongs to another hub.
var ErrPinMismatch = errors.New("the server is not the hub this appliance is pinned to (its TLS certificate does not match the enrolment code)")

// Client talks to the hub over HTTPS. The server is accepted only when
// its chain verifies up to a certificate whose public key has the pin (or
// which is the given CA): no public CA and no hostname check is needed,
// because the pin is the hub's identity. Safe for concurrent use.
type Client struct {
	base  *url.URL
	token []byte
	http  *http.Client
	// checkpoint is the audit checkpoint size the hub last answered.
	checkpoint checkpointFrom
	// push sizes pushes to what the link to the hub carried lately.
	push pushSizer
}

// NewClient makes a client for the hub at baseURL ("https://host:port"),
// trusting only a chain that ends in a certificate with the given pin.
// token may be nil (enrolment).
func NewClient(baseURL string, pin []byte, token []byte) (*Client, error) {
	if len(pin) != PinSize {
		return nil, fmt.Errorf("hub: pin of %d bytes, want %d", len(pin), PinSize)
	}
	return newClient(baseURL, token, pin, nil)
}

// NewClientCA makes a client for an enrolled appliance, which holds the
// DER certificate the hub's chain ends in (EnrolResponse.HubCA).
func NewClientCA(baseURL string, caDER []byte, token []byte) (*Client, error) {
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("hub: the stored hub certificate: %w", err)
	}
	return newClient(baseURL, token, SPKIPin(ca), ca)
}

// newClient makes the client; ca, when known, also verifies a chain that
// leaves the pinned certificate out.
func newClient(baseURL string, token, pin []byte, ca *x509.Certificate) (*Client, error) {
	u, err := ParseHubURL(baseURL)
	if err != nil {
		return nil, err
	}
	pin = bytes.Clone(pin)
	anchor := func(c *x509.Certificate) bool {
		return subtle.ConstantTimeCompare(SPKIPin(c), pin) == 1
	}
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The standard verification (public CAs, host name) is replaced
		// by VerifyConnection below: the pinned certificate is the only
		// trust anchor.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := verifyPinned(cs.PeerCertificates, anchor)
			if errors.Is(err, ErrPinMismatch) && ca != nil && len(cs.PeerCertificates) > 0 {
				err = verifyUnder(cs.PeerCertificates, ca)
			}
			return err
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // the hub is on the district's network
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		// Bodies are gzipped by Call itself; the transport must not add
		// or strip another layer.
		DisableCompression: true,
	}
	return &Client{base: u, token: bytes.Clone(token), http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}, nil
}

// ParseHubURL checks a hub address: https, a host, nothing else.
func ParseHubURL(s string) (*url.URL, error) {
	if len(s) > 2048 {
		return nil, errors.New("hub address too long")
	}
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("hub address %q: %w", s, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub address %q: want https://HOST:PORT", s)
	}
	return u, nil
}

// verifyPinned accepts a chain when some certificate of it matches the
// anchor and the certificates before it verify up to that one.
func verifyPinned(chain []*x509.Certificate, anchor func(*x509.Certificate) bool) error {
	if len(chain) == 0 {
		return ErrPinMismatch
	}
	for i, c := range chain {
		if !anchor(c) {
			continue
		}
		if i == 0 {
			return nil // the leaf itself is pinned (a provided certificate)
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		inter := x509.NewCertPool()
		for _, m := range chain[1:i] {
			inter.AddCert(m)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("hub certificate chain does not verify up to the pinned certificate: %w", err)
		}
		return nil
	}
	return ErrPinMismatch
}

// verifyUnder accepts a chain whose leaf verifies up to ca.
func verifyUnder(chain []*x509.Certificate, ca *x509.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, m := range chain[1:] {
		inter.AddCert(m)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return ErrPinMismatch
	}
	return nil
}

// Call POSTs req as gzip-compressed JSON to path on the hub, with the
// bearer token if the client has one, and decodes the answer into resp.
// An error answer is returned as *CallError.
func (c *Client) Call(ctx context.Context, path string, req, resp any) error {
	body, err := encodeRequest(req)
	if err != nil {
		return err
	}
	return c.callBody(ctx, path, body, resp)
}

// encodeRequest is the body Call sends for req: its size is known before
// anything is sent, so a push can be cut to fit the link.
func encodeRequest(req any) ([]byte, error) {
	var body bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&body, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(req); err != nil {
		return nil, fmt.Errorf("hub: encode request: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("hub: encode request: %w", err)
	}
	return body.Bytes(), nil
}

// callBody is Call with the body already encoded by encodeRequest.
func (c *Client) callBody(ctx context.Context, path string, body []byte, resp any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Content-Encoding", "gzip")
	hr.Header.Set("Accept-Encoding", "gzip")
	if len(c.token) > 0 {
		hr.Header.Set("Authorization", "Bearer "+encodeToken(c.token))
	}
	res, err := c.http.Do(hr)
	if err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) || errors.Is(err, ErrPinMismatch) {
			return ErrPinMismatch
		}
		if strings.Contains(err.Error(), ErrPinMismatch.Error()) {
			return ErrPinMismatch
		}
		return fmt.Errorf("hub: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e Error
		if err := readBody(res.Body, res.Header.Get("Content-Encoding"), &e); err != nil || e.Code == "" {
			e = Error{Code: http.StatusText(res.StatusCode)}
		}
		return &CallError{Status: res.StatusCode, Err: e}
	}
	if err := readBody(res.Body, res.Header.Get("Content-Encoding"), resp); err != nil {
		return fmt.Errorf("hub: answer: %w", err)
	}
	return nil
}

// CloseIdle closes idle connections (the appliance forgets the hub).
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// readBody decodes a JSON body, gzip-compressed or not, refusing more
// than maxWire on the wire or maxPlain once decompressed.
func readBody(r io.Reader, encoding string, v any) error {
	return readBodyLimits(r, encoding, v, maxWire, maxPlain)
}

// readBodyLimits is readBody with the limits given.
func readBodyLimits(r io.Reader, encoding string, v any, wireLimit, plainLimit int64) error {
	lr := &limitReader{r: r, n: wireLimit}
	var src io.Reader = lr
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(lr)
		if err != nil {
			return fmt.Errorf("body is not gzip: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return fmt.Errorf("unsupported content encoding %q", encoding)
	}
	pl := &limitReader{r: src, n: plainLimit}
	dec := json.NewDecoder(pl)
	if err := dec.Decode(v); err != nil {
		if lr.over || pl.over {
			return errTooLarge
		}
		return err
	}
	// Anything but whitespace after the object is a malformed body.
	if _, err := dec.Token(); err != io.EOF {
		if lr.over || pl.over {
			return errTooLarge
		}
		return errors.New("trailing data after the JSON body")
	}
	return nil
}

var errTooLarge = errors.New("body too large")

// limitReader is io.LimitReader that remembers it hit the limit.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
