package districtsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"passgate/pass"
	"passgate/store"
)

// The feed, hub → appliance: trust list, revocations, policy.

// handlePull answers PathPull with the increment since what the
// appliance says it applied, and records its contact.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	var req PullRequest
	a, err := s.applianceRequest(r, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.RevocationsAfter < 0 || req.Backlog < 0 || req.PolicyVersion < 0 || len(req.TrustHash) > sha256.Size ||
		len(req.Generation) > store.GenerationSize {
		s.writeError(w, r, badRequest("negative counter or malformed trust hash"))
		return
	}
	// Recorded when something moved, or every contactRecordEvery: every
	// appliance pulls every few seconds, and each record takes the hub's
	// writer (and an fsync) from its own gates' scan log.
	now := time.Now()
	applianceNow := now
	if req.Now > 0 {
		applianceNow = time.UnixMilli(req.Now)
	}
	if now.Sub(a.LastContact) >= contactRecordEvery || req.Backlog != a.Backlog || req.RevocationsAfter > a.RevocSeq {
		if err := s.db.TouchAppliance(r.Context(), a.ID, applianceNow, req.Backlog, req.RevocationsAfter); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	resp, err := BuildPull(r.Context(), s.db, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp.Role, resp.Draining = string(a.Role), !a.DrainingAt.IsZero()
	s.writeJSON(w, r, http.StatusOK, resp)
}

// contactRecordEvery is how often an appliance's pulls that change
// nothing else are recorded as its last contact.
const contactRecordEvery = 10 * time.Second

// BuildPull makes the increment for req: the trust list if its hash
// differs, a page of revocations after req.RevocationsAfter, the policy if
// its version is newer. Bundles going down use it too.
func BuildPull(ctx context.Context, db *store.DB, req *PullRequest) (*PullResponse, error) {
	resp := &PullResponse{Now: db.Now().UnixMilli()}
	// Read before the page: the end can only grow meanwhile, so it is
	// never below a number the page carries.
	var err error
	if resp.Generation, resp.RevocationsEnd, err = db.FeedGeneration(ctx); err != nil {
		return nil, err
	}
	trust, err := BuildTrustList(ctx, db)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(trust.Hash, req.TrustHash) {
		resp.Trust = trust
	}
	revs, more, err := db.RevocationsPage(ctx, req.RevocationsAfter, MaxRevocationPage)
	if err != nil {
		return nil, err
	}
	resp.More = more
	for _, r := range revs {
		resp.Revocations = append(resp.Revocations, RevocationToWire(r))
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	if v := pol.UpdatedAt.UnixMilli(); v > req.PolicyVersion {
		pi := PolicyToWire(pol)
		resp.Policy = &pi
	}
	return resp, nil
}

// BuildTrustList is the hub's trust list: every root and issuer key,
// public halves only, in key ID order, and the city root, with its hash.
func BuildTrustList(ctx context.Context, db *store.DB) (*TrustList, error) {
	keys, err := db.TrustKeys(ctx)
	if err != nil {
		return nil, err
	}
	t := &TrustList{Hash: TrustHash(keys), Keys: make([]TrustKey, 0, len(keys))}
	for _, k := range keys {
		t.Keys = append(t.Keys, TrustKeyToWire(k))
	}
	if err := withCity(ctx, db, t); err != nil {
		return nil, err
	}
	return t, nil
}

// TrustHash is SHA-256 over a canonical encoding of keys sorted by key
// ID: a domain string, then per key its ID, role, algorithm, public key,
// certificate, district, validity and revocation time, then its rotation
// record if it has one, each variable-length field preceded by its
// length, integers big-endian. Two lists hash alike exactly when they
// hold the same keys.
func TrustHash(keys []*store.Key) []byte {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b *store.Key) int { return bytes.Compare(a.KID[:], b.KID[:]) })
	h := sha256.New()
	h.Write([]byte("passgate-trust-v1"))
	var n [8]byte
	u64 := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(b)))
		h.Write(n[:4])
		h.Write(b)
	}
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	for _, k := range sorted {
		h.Write(k.KID[:])
		field([]byte(k.Role))
		u64(int64(k.Alg))
		field(k.Public)
		field(k.Cert)
		field([]byte(k.District))
		u64(ms(k.NotBefore))
		u64(ms(k.NotAfter))
		u64(ms(k.RevokedAt))
		if len(k.Rotation) > 0 {
			// Only when present, so lists without rotations hash as
			// they always did.
			field(k.Rotation)
		}
	}
	return h.Sum(nil)
}

// TrustKeyToWire is a key as the trust list carries it.
func TrustKeyToWire(k *store.Key) TrustKey {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	return TrustKey{KID: bytes.Clone(k.KID[:]), Role: k.Role, Alg: int(k.Alg), Public: k.Public, Cert: k.Cert,
		District: k.District, NotBefore: ms(k.NotBefore), NotAfter: ms(k.NotAfter), Revoked: ms(k.RevokedAt), Rotation: k.Rotation}
}

// Bounds on a trust list an appliance accepts.
const (
	maxTrustKeys   = 100000
	maxCertLen     = 4096
	maxDistrictLen = 64
)

// TrustKeysFromWire checks and converts a trust list: each key's ID must
// be the one its algorithm and public key give, so a list cannot slip a
// different key under a known ID.
func TrustKeysFromWire(list []TrustKey) ([]*store.Key, error) {
	if len(list) > maxTrustKeys {
		return nil, fmt.Errorf("trust list of %d keys", len(list))
	}
	keys := make([]*store.Key, 0, len(list))
	for i, w := range list {
		pub, err := pass.ParsePublicKey(pass.Alg(w.Alg), w.Public)
		if err != nil {
			return nil, fmt.Errorf("trust key %d: %w", i, err)
		}
		if !bytes.Equal(pub.KID[:], w.KID) {
			return nil, fmt.Errorf("trust key %d: key ID does not match the key", i)
		}
		if w.Role != store.RoleRoot && w.Role != store.RoleIssuer {
			return nil, fmt.Errorf("trust key %d: role %q", i, w.Role)
		}
		if w.District == "" || len(w.District) > maxDistrictLen || len(w.Cert) > maxCertLen || len(w.Rotation) > pass.MaxRotationLen {
			return nil, fmt.Errorf("trust key %d: malformed district or certificate", i)
		}
		if w.NotBefore < 0 || w.NotAfter < 0 || w.Revoked < 0 {
			return nil, fmt.Errorf("trust key %d: negative time", i)
		}
		tm := func(ms int64) time.Time {
			if ms == 0 {
				return time.Time{}
			}
			return time.UnixMilli(ms)
		}
		keys = append(keys, &store.Key{KID: pub.KID, Role: w.Role, Alg: pub.Alg, Public: pub.Raw, Cert: bytes.Clone(w.Cert),
			District: w.District, NotBefore: tm(w.NotBefore), NotAfter: tm(w.NotAfter), RevokedAt: tm(w.Revoked),
			Rotation: bytes.Clone(w.Rotation)})
	}
	return keys, nil
}

// RevocationToWire is a revocation as the feed carries it.
func RevocationToWire(r *store.Revocation) RevocationRecord {
	w := RevocationRecord{Seq: r.Seq, Kind: int(r.Kind), Target: r.Target, Reason: r.Reason, At: r.At.UnixMilli()}
	if !r.Before.IsZero() {
		w.Before = r.Before.UnixMilli()
	}
	return w
}

// RevocationFromWire converts a feed revocation; the store checks the
// rest (kind, target length, cutoff) when it applies it.
func RevocationFromWire(w *RevocationRecord) *store.Revocation {
	r := &store.Revocation{Seq: w.Seq, Kind: store.RevocationKind(w.Kind), Target: w.Target, Reason: w.Reason, At: time.UnixMilli(w.At)}
	if w.Before != 0 {
		r.Before = time.UnixMilli(w.Before)
	}
	return r
}

// PolicyToWire is the hub's policy as the feed carries it.
func PolicyToWire(p *store.Policy) PolicyInfo {
	colors := make([]int, len(p.Colors))
	for i, c := range p.Colors {
		colors[i] = int(c)
	}
	return PolicyInfo{
		Version: p.UpdatedAt.UnixMilli(), Colors: colors, MaxTestAgeMS: p.MaxTestAge.Milliseconds(),
		MinDoses: p.MinDoses, AcceptPaper: p.AcceptPaper, RepeatWindowMS: p.RepeatWindow.Milliseconds(),
		ClockSkewMS: p.ClockSkew.Milliseconds(), TimeZone: p.TimeZone,
		StaleAfterMS: p.StaleAfter.Milliseconds(),
	}
}

// PolicyFromWire converts a feed policy; the store validates the values
// when it saves them.
func PolicyFromWire(w *PolicyInfo) (*store.Policy, error) {
	if len(w.Colors) == 0 || len(w.Colors) > 8 {
		return nil, errors.New("policy: no colours")
	}
	p := &store.Policy{
		MaxTestAge: time.Duration(w.MaxTestAgeMS) * time.Millisecond, MinDoses: w.MinDoses, AcceptPaper: w.AcceptPaper,
		RepeatWindow: time.Duration(w.RepeatWindowMS) * time.Millisecond, ClockSkew: time.Duration(w.ClockSkewMS) * time.Millisecond,
		TimeZone:   w.TimeZone,
		StaleAfter: time.Duration(w.StaleAfterMS) * time.Millisecond,
	}
	for _, c := range w.Colors {
		if c < 0 || c > 255 {
			return nil, fmt.Errorf("policy: colour %d", c)
		}
		p.Colors = append(p.Colors, pass.Color(c))
	}
	return p, nil
}

// FeedFromWire turns a pull answer into what store.ApplyFeed applies,
// checking the trust list against its hash.
func FeedFromWire(resp *PullResponse) (*store.Feed, error) {
	if resp.Generation != nil && len(resp.Generation) != store.GenerationSize {
		return nil, fmt.Errorf("feed generation of %d bytes", len(resp.Generation))
	}
	f := &store.Feed{Generation: resp.Generation}
	if resp.Trust != nil {
		keys, city, err := trustFromWire(resp.Trust)
		if err != nil {
			return nil, err
		}
		f.Keys, f.TrustHash, f.City = keys, resp.Trust.Hash, city
	}
	if len(resp.Revocations) > MaxRevocationPage {
		return nil, fmt.Errorf("%d revocations in one answer", len(resp.Revocations))
	}
	for i := range resp.Revocations {
		f.Revocations = append(f.Revocations, RevocationFromWire(&resp.Revocations[i]))
	}
	if n := len(f.Revocations); n > 0 {
		f.RevocationsSeq = f.Revocations[n-1].Seq
	}
	if resp.Policy != nil {
		p, err := PolicyFromWire(resp.Policy)
		if err != nil {
			return nil, err
		}
		f.Policy, f.PolicyVersion = p, resp.Policy.Version
	}
	if resp.Role != "" {
		role, err := store.ParseApplianceRole(resp.Role)
		if err != nil {
			return nil, err
		}
		f.Role = role
	}
	f.Draining = resp.Draining
	return f, nil
}

// needsReread tells whether the appliance at st must read the whole feed
// again before applying resp: the hub's generation is not the one st is
// in, or the hub's revocations end before st's position (its history
// went backwards). changed: the hub's history changed under the
// appliance, as opposed to the first generation it sees.
func needsReread(st *store.FeedState, resp *PullResponse) (restart, changed bool) {
	if resp.Generation == nil {
		return false, false // an older hub
	}
	beyond := st.RevocationsSeq > resp.RevocationsEnd
	if bytes.Equal(st.Generation, resp.Generation) && !beyond {
		return false, false
	}
	return true, st.Generation != nil || beyond
}

// maxPullPages bounds the pages one PullOnce fetches: 100 pages of 5,000
// revocations; the next pull continues.
const maxPullPages = 100

// maxRestarts bounds the fresh starts of one PullOnce.
const maxRestarts = 3

// PullResult is what one PullOnce changed.
type PullResult struct {
	store.FeedResult
	Pages int
	// Reread: the hub's generation changed or it was behind this
	// appliance's position, and the whole feed was read again from the
	// start; HistoryChanged when that was not the first generation seen.
	Reread, HistoryChanged bool
}

// PullOnce fetches and applies the hub's increment, page after page
// while the hub says there is more.
func PullOnce(ctx context.Context, db *store.DB, c *Client) (*PullResult, error) {
	res := &PullResult{}
	restarts := 0
	for res.Pages < maxPullPages {
		st, err := db.FeedState(ctx)
		if err != nil {
			return res, err
		}
		backlog, err := db.SyncBacklog(ctx)
		if err != nil {
			return res, err
		}
		req := PullRequest{Now: db.Now().UnixMilli(), Backlog: backlog, RevocationsAfter: st.RevocationsSeq,
			TrustHash: st.TrustHash, PolicyVersion: st.PolicyVersion, Generation: st.Generation}
		var resp PullResponse
		if err := c.Call(ctx, PathPull, &req, &resp); err != nil {
			return res, err
		}
		f, err := FeedFromWire(&resp)
		if err != nil {
			return res, fmt.Errorf("hub feed: %w", err)
		}
		if restart, changed := needsReread(st, &resp); restart {
			// The answer is an increment from a position that means
			// nothing now: start again from the beginning. A hub that
			// keeps changing generation is not followed for ever.
			if restarts++; restarts > maxRestarts {
				return res, errors.New("hub feed: the hub's generation keeps changing")
			}
			if err := db.RestartFeed(ctx, resp.Generation, changed || res.HistoryChanged); err != nil {
				return res, err
			}
			res.Reread, res.HistoryChanged = true, changed || res.HistoryChanged
			continue
		}
		fr, err := db.ApplyFeed(ctx, f)
		if err != nil {
			return res, err
		}
		res.Pages++
		res.FeedResult.Add(fr)
		if !resp.More {
			break
		}
	}
	return res, nil
}
