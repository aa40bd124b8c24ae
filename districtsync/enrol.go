package districtsync

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"passgate/pass"
	"passgate/store"
)

// IssuerValidity is how long the hub certifies an appliance's issuer key:
// as long as a standalone district's own issuer key.
const IssuerValidity = 2 * 365 * 24 * time.Hour

// handleEnrol answers PathEnrol: the code's secret in the body is the
// only credential.
func (s *Server) handleEnrol(w http.ResponseWriter, r *http.Request) {
	var req EnrolRequest
	if err := readRequest(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(s.hubCA) == 0 || r.TLS == nil {
		s.writeError(w, r, &CallError{Status: http.StatusServiceUnavailable, Err: Error{Code: "no_tls",
			Message: "this hub serves enrolment over HTTPS only (start it with --tls-addr)"}})
		return
	}
	resp, err := EnrolAppliance(r.Context(), s.db, &req, s.hubCA, "enrolment", r.RemoteAddr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attrs := []any{"appliance", resp.Appliance, "from", r.RemoteAddr, "issuer", len(resp.IssuerCert) > 0}
	if fpr, err := RequestFingerprint(&req); err == nil {
		attrs = append(attrs, "issuer_sha256", fmt.Sprintf("%x", fpr))
	}
	s.log.Info("appliance enrolled", attrs...)
	s.writeJSON(w, r, http.StatusOK, resp)
}

// Answers to a bad enrolment request.
var (
	errBadCode = &CallError{Status: http.StatusForbidden, Err: Error{Code: "bad_code",
		Message: "unknown or already used enrolment code (ask the hub admin for a new one)"}}
	errExpiredCode = &CallError{Status: http.StatusForbidden, Err: Error{Code: "expired_code",
		Message: "the enrolment code has expired (ask the hub admin for a new one)"}}
)

// EnrolAppliance enrols the appliance whose code's secret req carries:
// checks the code, checks that the request proves possession of every key
// it offers, certifies its issuer key with the district root when it may
// issue, makes its sync token, and returns what the appliance starts
// from. hubCA is the DER certificate the hub's TLS chain ends in; from
// says where the request came from (the remote address, or the file),
// for the admin. A request with a valid code that does not prove
// possession is refused and audited. Errors the appliance caused are
// *CallError.
func EnrolAppliance(ctx context.Context, db *store.DB, req *EnrolRequest, hubCA []byte, actor store.Actor, from string) (*EnrolResponse, error) {
	if len(req.Secret) != SecretSize {
		return nil, errBadCode
	}
	sum := sha256.Sum256(req.Secret)
	a, err := db.ApplianceByCode(ctx, sum[:])
	switch {
	case errors.Is(err, store.ErrCodeInvalid):
		return nil, errBadCode
	case errors.Is(err, store.ErrCodeExpired):
		return nil, errExpiredCode
	case err != nil:
		return nil, err
	}
	pub, err := checkPossession(req)
	if err != nil {
		if aerr := db.RefuseEnrolment(ctx, sum[:], from, err.Error(), actor); aerr != nil {
			return nil, aerr
		}
		return nil, badRequest(err.Error())
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	e := &store.Enrolment{CodeHash: sum[:], BundleKey: req.BundleKey, Actor: actor, From: from}
	var cert []byte
	// An appliance always offers an issuer key; only one registered to
	// issue gets it certified.
	if a.Role.MayIssue() && pub != nil {
		fpr := pub.Fingerprint()
		e.IssuerFingerprint = fpr[:]
		root, err := districtRoot(ctx, db)
		if err != nil {
			return nil, err
		}
		now := db.Now().Truncate(time.Second)
		notAfter := now.Add(IssuerValidity)
		cert, err = pass.IssueCert(root, pass.Cert{
			Key: pub, District: d.ID, Appliance: store.CertApplianceID(a.ID),
			// Checkers whose clock is a little behind still accept it.
			NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		})
		if err != nil {
			return nil, fmt.Errorf("certify issuer key: %w", err)
		}
		e.Issuer = &store.Key{KID: pub.KID, Role: store.RoleIssuer, Alg: pub.Alg, Public: pub.Raw, Cert: cert,
			District: d.ID, NotBefore: now, NotAfter: notAfter}
	}
	token := make([]byte, tokenSize)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	e.TokenHash = TokenHash(token)
	if a, err = db.EnrolAppliance(ctx, e); err != nil {
		switch {
		case errors.Is(err, store.ErrCodeInvalid):
			return nil, errBadCode // used by a concurrent request meanwhile
		case errors.Is(err, store.ErrCodeExpired):
			return nil, errExpiredCode
		case errors.Is(err, store.ErrConflict):
			return nil, badRequest("this issuer key is already known to the hub")
		}
		return nil, err
	}
	trust, err := BuildTrustList(ctx, db)
	if err != nil {
		return nil, err
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	di := DistrictInfo{ID: d.ID, Name: d.Name}
	if a.Role == store.ApplianceOffice {
		// Where ID numbers are typed only: a gate checks revocations by
		// pseudonym and never needs to make one.
		di.PseudonymKey, di.CityPseudonymKey = d.PseudonymKey, d.CityPseudonymKey
	}
	return &EnrolResponse{
		District:   di,
		Appliance:  a.Name,
		Role:       string(a.Role),
		Token:      token,
		IssuerCert: cert,
		HubCA:      hubCA,
		Trust:      *trust,
		Policy:     PolicyToWire(pol),
		Now:        db.Now().UnixMilli(),
	}, nil
}

// enrolDomain starts every signed enrolment request, so the signature
// can never be taken for one over anything else.
const enrolDomain = "passgate enrolment request v1\x00"

// EnrolMessage is what the keys of an enrolment request sign: the
// domain, SHA-256 of the code's secret (so the signatures answer this
// code only), the issuer algorithm and key, the bundle key and the
// appliance's clock, each key prefixed with its length.
func EnrolMessage(req *EnrolRequest) []byte {
	secret := sha256.Sum256(req.Secret)
	b := make([]byte, 0, len(enrolDomain)+sha256.Size+8+2+len(req.IssuerKey)+2+len(req.BundleKey)+8)
	b = append(b, enrolDomain...)
	b = append(b, secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(int64(req.IssuerAlg)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(req.IssuerKey)))
	b = append(b, req.IssuerKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(req.BundleKey)))
	b = append(b, req.BundleKey...)
	return binary.BigEndian.AppendUint64(b, uint64(req.Now))
}

// checkPossession parses every key of req (pass.ParsePublicKey refuses
// small-order, non-canonical and off-curve keys) and checks each one's
// signature of EnrolMessage. It returns the issuer key, nil when none
// is offered.
func checkPossession(req *EnrolRequest) (*pass.PublicKey, error) {
	if len(req.BundleKey) > 64 || len(req.IssuerKey) > 64 {
		return nil, errors.New("enrolment request: key too long")
	}
	bundle, err := ParseBundlePublicKey(req.BundleKey)
	if err != nil {
		return nil, fmt.Errorf("enrolment request: bundle key: %w", err)
	}
	msg := EnrolMessage(req)
	if !bundle.Verify(msg, req.BundleSig) {
		return nil, errors.New("enrolment request: the bundle key's signature does not verify (no proof of possession)")
	}
	if len(req.IssuerKey) == 0 {
		if len(req.IssuerSig) > 0 {
			return nil, errors.New("enrolment request: issuer signature without an issuer key")
		}
		return nil, nil
	}
	issuer, err := pass.ParsePublicKey(pass.Alg(req.IssuerAlg), req.IssuerKey)
	if err != nil {
		return nil, fmt.Errorf("enrolment request: issuer key: %w", err)
	}
	if !issuer.Verify(msg, req.IssuerSig) {
		return nil, errors.New("enrolment request: the issuer key's signature does not verify (no proof of possession)")
	}
	return issuer, nil
}

// RequestFingerprint is the SHA-256 fingerprint of the issuer key a
// request offers, the one the hub's admin sees.
func RequestFingerprint(req *EnrolRequest) ([]byte, error) {
	k, err := pass.ParsePublicKey(pass.Alg(req.IssuerAlg), req.IssuerKey)
	if err != nil {
		return nil, err
	}
	f := k.Fingerprint()
	return f[:], nil
}

// signEnrolRequest signs req with the appliance's issuer key (if it
// offers one) and its bundle key.
func signEnrolRequest(req *EnrolRequest, issuer, bundle *pass.PrivateKey) error {
	msg := EnrolMessage(req)
	for _, k := range []struct {
		key *pass.PrivateKey
		sig *[]byte
	}{{issuer, &req.IssuerSig}, {bundle, &req.BundleSig}} {
		if k.key == nil {
			continue
		}
		s, err := NewBundleSigner(k.key)
		if err != nil {
			return fmt.Errorf("sign enrolment request: %w", err)
		}
		if *k.sig, err = s.sign(msg); err != nil {
			return fmt.Errorf("sign enrolment request: %w", err)
		}
	}
	return nil
}

func badRequest(msg string) *CallError {
	return &CallError{Status: http.StatusBadRequest, Err: Error{Code: "bad_request", Message: msg}}
}

// districtRoot is the district root key with its private half: what
// makes this passgate a hub.
func districtRoot(ctx context.Context, db *store.DB) (*pass.PrivateKey, error) {
	keys, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil {
		return nil, err
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if keys[i].RevokedAt.IsZero() {
			return pass.ParsePrivateKey(keys[i].Private)
		}
	}
	return nil, errors.New("no district root key with its private half here: only the district's hub enrols appliances")
}

// Pending is an enrolment under way at the appliance: the code, and the
// private keys whose public halves went in the request. Offline, it waits
// in the data directory between the request and the response.
type Pending struct {
	Code      string       `json:"code"`
	IssuerKey []byte       `json:"issuer_key"` // pass private key encoding
	BundleKey []byte       `json:"bundle_key"` // Ed25519 private key
	Request   EnrolRequest `json:"request"`
}

// PendingFile is the name of the pending enrolment in the data directory.
const PendingFile = "enroll-pending.json"

// NewPending makes the appliance's keys and its enrolment request.
func NewPending(code Code, now time.Time) (*Pending, error) {
	issuer, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		return nil, err
	}
	ipriv, err := issuer.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bpub, bpriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	bundle, err := ParseBundleKey(bpriv)
	if err != nil {
		return nil, err
	}
	p := &Pending{
		Code: code.String(), IssuerKey: ipriv, BundleKey: bpriv,
		Request: EnrolRequest{
			Secret: bytes.Clone(code.Secret[:]), IssuerAlg: int(issuer.Public().Alg), IssuerKey: issuer.Public().Raw,
			BundleKey: bpub, Now: now.UnixMilli(),
		},
	}
	if err := signEnrolRequest(&p.Request, issuer, bundle); err != nil {
		return nil, err
	}
	return p, nil
}

// EnrolResult tells what an enrolment made at the appliance.
type EnrolResult struct {
	District      string
	DistrictName  string
	Appliance     string
	Role          store.ApplianceRole
	MayIssue      bool
	AdminUser     string
	AdminPassword string // set only when generated
}

// EnrolOnline enrols the appliance whose fresh data directory db is
// open, with the hub at hubURL, using code. adminPassword empty: one is
// generated and returned.
func EnrolOnline(ctx context.Context, db *store.DB, hubURL string, code Code, adminPassword string) (*EnrolResult, error) {
	if err := requireFresh(ctx, db); err != nil {
		return nil, err
	}
	p, err := NewPending(code, db.Now())
	if err != nil {
		return nil, err
	}
	c, err := NewClient(hubURL, code.Pin[:], nil)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdle()
	var resp EnrolResponse
	if err := c.Call(ctx, PathEnrol, &p.Request, &resp); err != nil {
		return nil, err
	}
	return Complete(ctx, db, hubURL, p, &resp, adminPassword)
}

// requireFresh refuses a data directory that already holds a district.
func requireFresh(ctx context.Context, db *store.DB) error {
	ok, err := db.Initialised(ctx)
	if err != nil {
		return err
	}
	if ok {
		return ErrNotFresh
	}
	return nil
}

// ErrNotFresh: enrolment needs a data directory without a district.
var ErrNotFresh = errors.New("this data directory already holds a district; enrol into a new, empty data directory")

// Complete stores an enrolment answer at the appliance, after checking
// that it belongs to the pending request: the hub certificate has the
// code's pin, the issuer certificate (if any) certifies this appliance's
// key under a root of the trust list, and every trust key is what its
// ID says.
func Complete(ctx context.Context, db *store.DB, hubURL string, p *Pending, resp *EnrolResponse, adminPassword string) (*EnrolResult, error) {
	code, err := ParseCode(p.Code)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(resp.HubCA)
	if err != nil {
		return nil, fmt.Errorf("enrolment answer: hub certificate: %w", err)
	}
	if !bytes.Equal(SPKIPin(ca), code.Pin[:]) {
		return nil, fmt.Errorf("enrolment answer: %w", ErrPinMismatch)
	}
	if err := store.CheckApplianceName(resp.Appliance); err != nil {
		return nil, fmt.Errorf("enrolment answer: %w", err)
	}
	role := store.ApplianceOffice // an older hub says nothing: as before roles
	if resp.Role != "" {
		if role, err = store.ParseApplianceRole(resp.Role); err != nil {
			return nil, fmt.Errorf("enrolment answer: %w", err)
		}
	}
	if role == store.ApplianceGate {
		resp.District.PseudonymKey, resp.District.CityPseudonymKey = nil, nil // never kept on a gate, even if sent
		resp.IssuerCert = nil
	}
	if resp.District.ID == "" || len(resp.District.ID) > 64 || len(resp.District.Name) > 200 ||
		(role == store.ApplianceOffice && len(resp.District.PseudonymKey) != 32) ||
		(resp.District.CityPseudonymKey != nil && len(resp.District.CityPseudonymKey) != 32) {
		return nil, errors.New("enrolment answer: malformed district")
	}
	if err := pass.CheckIdent("district", resp.District.ID); err != nil {
		return nil, fmt.Errorf("enrolment answer: %w", err)
	}
	if len(resp.Token) != tokenSize {
		return nil, errors.New("enrolment answer: malformed sync token")
	}
	keys, city, err := trustFromWire(&resp.Trust)
	if err != nil {
		return nil, fmt.Errorf("enrolment answer: %w", err)
	}
	trustHash := resp.Trust.Hash
	if city != nil {
		// The city root and the roots it certifies are judged by the
		// first pull (store.ApplyFeed), which the empty hash asks for.
		keys, trustHash = withoutCityRoots(keys, resp.District.ID), nil
	}
	pol, err := PolicyFromWire(&resp.Policy)
	if err != nil {
		return nil, fmt.Errorf("enrolment answer: %w", err)
	}
	res := &EnrolResult{District: resp.District.ID, DistrictName: resp.District.Name, Appliance: resp.Appliance, Role: role, AdminUser: "admin"}
	setup := &store.EnrolledSetup{
		District: &store.District{ID: resp.District.ID, Name: resp.District.Name, PseudonymKey: resp.District.PseudonymKey,
			CityPseudonymKey: resp.District.CityPseudonymKey, Appliance: resp.Appliance},
		Trust: keys, Policy: pol, PolicyVersion: resp.Policy.Version, TrustHash: trustHash,
		Hub: &store.SyncHub{URL: hubURL, HubCA: resp.HubCA, Appliance: resp.Appliance, Token: resp.Token, BundleKey: p.BundleKey,
			Role: store.ApplianceRole(resp.Role)},
	}
	if len(resp.IssuerCert) > 0 {
		k, err := ownIssuer(p, resp, keys)
		if err != nil {
			return nil, fmt.Errorf("enrolment answer: %w", err)
		}
		setup.Issuer = k
		res.MayIssue = true
	}
	password := adminPassword
	if password == "" {
		password = randomPassword()
		res.AdminPassword = password
	}
	hash, err := store.HashPassword(password)
	if err != nil {
		return nil, err
	}
	setup.Admin = &store.User{Username: res.AdminUser, Role: store.UserAdmin, PasswordHash: hash}
	if err := db.SetupEnrolled(ctx, setup); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, ErrNotFresh
		}
		return nil, err
	}
	return res, nil
}

// ownIssuer checks the hub's certificate of this appliance's issuer key
// and makes the key record with the private half.
func ownIssuer(p *Pending, resp *EnrolResponse, trust []*store.Key) (*store.Key, error) {
	priv, err := pass.ParsePrivateKey(p.IssuerKey)
	if err != nil {
		return nil, err
	}
	var roots []pass.Root
	for _, k := range trust {
		if k.Role == store.RoleRoot && k.District == resp.District.ID && k.RevokedAt.IsZero() {
			pk, err := pass.ParsePublicKey(k.Alg, k.Public)
			if err != nil {
				return nil, err
			}
			roots = append(roots, pass.Root{District: k.District, Key: pk})
		}
	}
	cert, err := pass.ParseCert(resp.IssuerCert, roots)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	if cert.Key.KID != priv.Public().KID || cert.District != resp.District.ID {
		return nil, errors.New("issuer certificate is not for this appliance's key in this district")
	}
	return &store.Key{KID: cert.Key.KID, Role: store.RoleIssuer, Alg: cert.Key.Alg, Public: cert.Key.Raw, Private: p.IssuerKey,
		Cert: resp.IssuerCert, District: cert.District, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}, nil
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789" // no look-alikes
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Offline enrolment files.

// Limits on the files carried by hand: far above any real one.
const (
	maxRequestFile  = 64 << 10
	maxResponseFile = 16 << 20
)

// requestFile is the offline request as written to a file.
type requestFile struct {
	Format  string       `json:"format"`
	Request EnrolRequest `json:"request"`
}

const requestFormat = "passgate-enrol-request/1"

// responseMagic starts a sealed response file; the digit is the version.
var responseMagic = []byte("PGENRSP1")

// WritePending saves p in dir (0600) and writes the request file.
// Whoever holds the request file holds the code: carry it like the code.
func WritePending(dir string, p *Pending, requestOut string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := writeFile0600(filepath.Join(dir, PendingFile), b); err != nil {
		return err
	}
	rb, err := json.MarshalIndent(requestFile{Format: requestFormat, Request: p.Request}, "", "  ")
	if err != nil {
		return err
	}
	return writeFile0600(requestOut, append(rb, '\n'))
}

// ReadPending reads the pending enrolment of dir.
func ReadPending(dir string) (*Pending, error) {
	b, err := readBounded(filepath.Join(dir, PendingFile), maxRequestFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no enrolment request was made in %s (run enrol with --request-out first)", dir)
		}
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", PendingFile, err)
	}
	return &p, nil
}

// RemovePending deletes the pending enrolment once it completed.
func RemovePending(dir string) error {
	err := os.Remove(filepath.Join(dir, PendingFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ParseRequestFile reads an offline enrolment request.
func ParseRequestFile(b []byte) (*EnrolRequest, error) {
	if len(b) > maxRequestFile {
		return nil, errors.New("not an enrolment request: file too large")
	}
	var f requestFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.Format != requestFormat {
		return nil, errors.New("not a passgate enrolment request file")
	}
	return &f.Request, nil
}

// responseKey derives the key sealing a response from the code secret.
func responseKey(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "passgate enrolment response v1", 32)
}

// SealResponse encrypts resp for the holder of the code secret:
// magic ‖ nonce ‖ AES-256-GCM(JSON), the magic as additional data.
func SealResponse(secret []byte, resp *EnrolResponse) ([]byte, error) {
	key, err := responseKey(secret)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), responseMagic...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, responseMagic), nil
}

// ErrResponseFile is wrapped by every OpenResponse error.
var ErrResponseFile = errors.New("enrolment response refused")

// OpenResponse decrypts a sealed response with the code secret. A file
// that is altered, truncated, or sealed for another code is refused.
func OpenResponse(secret, b []byte) (*EnrolResponse, error) {
	if len(b) > maxResponseFile {
		return nil, fmt.Errorf("%w: file too large", ErrResponseFile)
	}
	if !bytes.HasPrefix(b, responseMagic) {
		return nil, fmt.Errorf("%w: not a passgate enrolment response file", ErrResponseFile)
	}
	key, err := responseKey(secret)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	rest := b[len(responseMagic):]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: file truncated", ErrResponseFile)
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], responseMagic)
	if err != nil {
		return nil, fmt.Errorf("%w: it was altered, or it answers another enrolment code", ErrResponseFile)
	}
	var resp EnrolResponse
	if err := json.Unmarshal(plain, &resp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResponseFile, err)
	}
	return &resp, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// ReadResponseFile reads and opens a response file.
func ReadResponseFile(path string, secret []byte) (*EnrolResponse, error) {
	b, err := readBounded(path, maxResponseFile)
	if err != nil {
		return nil, err
	}
	return OpenResponse(secret, b)
}

// ReadRequestFile reads an offline request file.
func ReadRequestFile(path string) (*EnrolRequest, error) {
	b, err := readBounded(path, maxRequestFile)
	if err != nil {
		return nil, err
	}
	return ParseRequestFile(b)
}

// readBounded reads a file refusing one larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: file too large", path)
	}
	return b, nil
}

// writeFile0600 writes a file readable by its owner only, atomically.
func writeFile0600(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
