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
	"sync"
	"time"

	"passgate/pass"
	"passgate/store"
)

// The feed, hub → appliance: trust list, revocations, policy.

// handlePull answers PathPull with the increment since what the
// appliance says it applied, and records its contact. A pull that asks to
// wait and finds nothing new waits for a change, at most pollWait.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	var req PullRequest
	a, err := s.applianceRequest(r, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.RevocationsAfter < 0 || req.Backlog < 0 || req.PolicyVersion < 0 || req.TrustVersion < 0 || len(req.TrustHash) > sha256.Size ||
		len(req.Generation) > store.GenerationSize || len(req.CityKeyCheck) > 8 {
		s.writeError(w, r, badRequest("negative counter or malformed trust hash"))
		return
	}
	if err := s.recordContact(r.Context(), a, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	waiting := req.Wait && s.running.Load()
	var changed <-chan struct{}
	var pos *store.FeedPositions
	if waiting {
		// Anything beyond these positions closes changed: the answer
		// may be built from them, sparing a read per pull.
		var p store.FeedPositions
		var known bool
		if changed, p, known = s.watch.changed(); known {
			pos = &p
		}
	}
	resp, err := s.buildPull(r.Context(), &req, pos)
	if err == nil && waiting && !resp.news(&req) {
		if resp, err = s.waitForChange(w, r, &req, resp, changed); resp == nil && err == nil {
			return // the appliance went away
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp.Role, resp.Draining = string(a.Role), !a.DrainingAt.IsZero()
	if resp.CityPseudonymKey, err = cityKeyFor(r.Context(), s.db, a.Role, req.CityKeyCheck); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

// waitForChange holds a pull that found nothing new until the feed moves,
// pollWait passes or the server drains, and answers what is new then.
// nil, nil: the appliance went away.
// idle is the answer built before waiting, given again (with the time)
// when nothing changed.
func (s *Server) waitForChange(w http.ResponseWriter, r *http.Request, req *PullRequest, idle *PullResponse,
	changed <-chan struct{}) (*PullResponse, error) {
	// The connection's deadlines are the server's, set for a request
	// answered at once: a waiting pull is given its own.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.pollWait + 15*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	t := time.NewTimer(s.pollWait)
	defer t.Stop()
	select {
	case <-changed:
		_, pos, _ := s.watch.changed()
		return s.buildPull(r.Context(), req, &pos)
	case <-t.C:
	case <-s.draining:
	case <-r.Context().Done():
		return nil, nil
	}
	idle.Now = s.db.Now().UnixMilli()
	return idle, nil
}

// recordContact notes the appliance's contact: in the batch that Run
// writes, or at once (when something moved, or every contactRecordEvery)
// on a hub without Run.
func (s *Server) recordContact(ctx context.Context, a *store.Appliance, req *PullRequest) error {
	now := time.Now()
	applianceNow := now
	if req.Now > 0 {
		applianceNow = time.UnixMilli(req.Now)
	}
	if s.running.Load() {
		at := s.db.Now()
		s.contacts.note(store.ApplianceContact{ID: a.ID, At: at, Skew: applianceNow.Sub(at).Truncate(time.Millisecond),
			Backlog: req.Backlog, RevocSeq: req.RevocationsAfter})
		return nil
	}
	// Every appliance pulls every few seconds, and each record takes the
	// hub's writer (and an fsync) from its own gates' scan log.
	if now.Sub(a.LastContact) >= contactRecordEvery || req.Backlog != a.Backlog || req.RevocationsAfter > a.RevocSeq {
		return s.db.TouchAppliance(ctx, a.ID, applianceNow, req.Backlog, req.RevocationsAfter)
	}
	return nil
}

// contactRecordEvery is how often an appliance's pulls that change
// nothing else are recorded as its last contact.
const contactRecordEvery = 10 * time.Second

// news tells whether an answer to req brings the appliance anything:
// part of the feed, or a generation other than the one it asked in (or
// an end before its position), after which it reads the whole feed again.
// A pull whose answer brings nothing may wait for a change; one whose
// hub's history moved under it never waits.
func (p *PullResponse) news(req *PullRequest) bool {
	if p.Trust != nil || p.TrustDelta != nil || len(p.Revocations) > 0 || p.Policy != nil {
		return true
	}
	return p.Generation != nil && (!bytes.Equal(p.Generation, req.Generation) || req.RevocationsAfter > p.RevocationsEnd)
}

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
	return resp, addFeed(ctx, db, req, resp, nil)
}

// buildPull is BuildPull with the hub's cached trust list, answering a
// delta when the appliance takes one. pos are the feed's positions (nil:
// read them). Answers are shared between the pulls that ask the same at
// the same positions: a change wakes thousands of pulls at once, nearly
// all of them at the same place.
func (s *Server) buildPull(ctx context.Context, req *PullRequest, pos *store.FeedPositions) (*PullResponse, error) {
	if pos == nil {
		p, err := s.db.FeedPositions(ctx)
		if err != nil {
			return nil, err
		}
		pos = &p
	}
	key := answerKey{revocationsAfter: req.RevocationsAfter, trustHash: string(req.TrustHash), policyVersion: req.PolicyVersion, deltas: req.Deltas}
	resp, ok := s.answers.get(*pos, key)
	if !ok {
		resp = &PullResponse{}
		// Read before the page, as BuildPull does: the end can only grow
		// meanwhile, so it is never below a number the page carries. The
		// generation is the open's: the same for every answer shared.
		var err error
		if resp.Generation, resp.RevocationsEnd, err = s.db.FeedGeneration(ctx); err != nil {
			return nil, err
		}
		if err := s.trust.answerTrust(ctx, s.db, pos, req, resp); err != nil {
			return nil, err
		}
		if err := addFeed(ctx, s.db, req, resp, pos); err != nil {
			return nil, err
		}
		s.answers.put(*pos, key, resp)
	}
	answer := *resp // shared: only its copy is changed
	answer.Now = s.db.Now().UnixMilli()
	return &answer, nil
}

// answerKey is what a pull asks, as far as its answer depends on it.
type answerKey struct {
	revocationsAfter int64
	trustHash        string
	policyVersion    int64
	deltas           bool
}

// maxAnswers bounds the answers kept for one set of positions.
const maxAnswers = 256

// answerCache holds the answers built at the feed's current positions.
type answerCache struct {
	mu  sync.Mutex
	pos store.FeedPositions
	m   map[answerKey]*PullResponse
}

func (c *answerCache) get(pos store.FeedPositions, k answerKey) (*PullResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos != pos {
		return nil, false
	}
	r, ok := c.m[k]
	return r, ok
}

func (c *answerCache) put(pos store.FeedPositions, k answerKey, r *PullResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos != pos || c.m == nil {
		c.pos, c.m = pos, make(map[answerKey]*PullResponse)
	}
	if len(c.m) < maxAnswers {
		c.m[k] = r
	}
}

// addFeed adds to resp the page of revocations after req's and the
// policy if newer than req's. pos, when known, spares the reads of an
// idle pull: nothing after the feed's positions is read.
func addFeed(ctx context.Context, db *store.DB, req *PullRequest, resp *PullResponse, pos *store.FeedPositions) error {
	if pos == nil || pos.RevocationsSeq > req.RevocationsAfter {
		revs, more, err := db.RevocationsPage(ctx, req.RevocationsAfter, MaxRevocationPage)
		if err != nil {
			return err
		}
		resp.More = more
		for _, r := range revs {
			resp.Revocations = append(resp.Revocations, RevocationToWire(r))
		}
	}
	if pos != nil && pos.PolicyVersion <= req.PolicyVersion {
		return nil
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		return err
	}
	if v := pol.UpdatedAt.UnixMilli(); v > req.PolicyVersion {
		pi := PolicyToWire(pol)
		resp.Policy = &pi
	}
	return nil
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
	w := RevocationRecord{Seq: r.Seq, Kind: int(r.Kind), Target: r.Target, Reason: r.Reason, At: r.At.UnixMilli(), Tag: r.Tag}
	if !r.Before.IsZero() {
		w.Before = r.Before.UnixMilli()
	}
	if r.ID != r.Seq {
		w.ID = r.ID
	}
	return w
}

// RevocationFromWire converts a feed revocation; the store checks the
// rest (kind, target length, cutoff) when it applies it.
func RevocationFromWire(w *RevocationRecord) *store.Revocation {
	r := &store.Revocation{Seq: w.Seq, Kind: store.RevocationKind(w.Kind), Target: w.Target, Reason: w.Reason, At: time.UnixMilli(w.At),
		ID: w.ID, Tag: w.Tag}
	if r.ID == 0 {
		r.ID = w.Seq
	}
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
	if resp.TrustDelta != nil {
		return nil, errors.New("trust delta not applied to a list")
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
	// AtEnd: the last page applied reached the end of the hub's feed.
	AtEnd bool
}

// PullOnce fetches and applies the hub's increment, page after page
// while the hub says there is more.
func PullOnce(ctx context.Context, db *store.DB, c *Client) (*PullResult, error) {
	return pull(ctx, db, c, false)
}

// PullWait is PullOnce that, when nothing is new, waits at the hub for a
// change (at most PollWait; a hub that does not wait answers at once).
func PullWait(ctx context.Context, db *store.DB, c *Client) (*PullResult, error) {
	return pull(ctx, db, c, true)
}

// pull is PullOnce; wait lets the first page wait at the hub.
func pull(ctx context.Context, db *store.DB, c *Client, wait bool) (*PullResult, error) {
	res := &PullResult{}
	restarts := 0
	whole := false // a delta could not be used: ask for the whole list
	for res.Pages < maxPullPages {
		st, err := db.FeedState(ctx)
		if err != nil {
			return res, err
		}
		backlog, err := db.SyncBacklog(ctx)
		if err != nil {
			return res, err
		}
		check, err := db.CityKeyCheckHeld(ctx)
		if err != nil {
			return res, err
		}
		req := PullRequest{Now: db.Now().UnixMilli(), Backlog: backlog, RevocationsAfter: st.RevocationsSeq,
			TrustHash: st.TrustHash, PolicyVersion: st.PolicyVersion, Generation: st.Generation,
			Deltas: !whole, Wait: wait && res.Pages == 0 && !whole && !res.Reread, CityKeyCheck: check}
		var resp PullResponse
		if err := c.Call(ctx, PathPull, &req, &resp); err != nil {
			return res, err
		}
		if resp.TrustDelta != nil {
			if err := resolveDelta(ctx, db, st.TrustHash, &resp); err != nil {
				if whole {
					return res, fmt.Errorf("hub feed: %w", err)
				}
				whole = true
				continue
			}
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
		if resp.CityPseudonymKey != nil {
			// After the feed: a role it changed to gate drops the key.
			// Another key held here is refused and audited; the feed goes
			// on, as the gates' revocations must.
			if err := db.ReceiveCityPseudonymKey(ctx, resp.CityPseudonymKey); err != nil && !errors.Is(err, store.ErrConflict) {
				return res, fmt.Errorf("hub feed: %w", err)
			}
		}
		res.Pages++
		res.FeedResult.Add(fr)
		whole = false
		if !resp.More {
			res.AtEnd = true
			break
		}
	}
	return res, nil
}

// resolveDelta turns resp's trust delta into the whole list it makes
// from the list applied here (whose hash is applied), checked against
// the delta's hash; FeedFromWire then checks it as any whole list.
func resolveDelta(ctx context.Context, db *store.DB, applied []byte, resp *PullResponse) error {
	held, err := db.TrustKeys(ctx)
	if err != nil {
		return err
	}
	list, err := ApplyTrustDelta(held, applied, resp.TrustDelta)
	if err != nil {
		return err
	}
	resp.Trust, resp.TrustDelta = list, nil
	return nil
}
