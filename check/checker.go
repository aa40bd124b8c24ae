// Package check turns text read from a pass into a decision: it decodes and
// verifies a pass offline, applies revocations and the check policy, flags
// repeats, logs the scan durably and tells subscribers (the gate screens).
package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passgate/pass"
	"passgate/store"
)

// MaxInput caps the raw input a check looks at. Anything longer cannot be a
// pass (no QR code holds more) and is refused before any decoding.
const MaxInput = pass.MaxTextLen

// Verdict is whether a check lets the holder through. Its string is what
// the JSON answer and the scan log carry.
type Verdict string

// Verdicts.
const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
)

// Decision is the outcome of one check, with what the gate screen shows.
type Decision struct {
	Decision Verdict // Allow or Deny
	Reason   Reason
	Repeat   bool // the same pass was checked within the repeat window

	// Display data, set only when the pass signature verified.
	Name      string // masked name
	IDTail    string
	Color     pass.Color
	Kind      pass.Kind
	Doses     int
	TestedAt  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time

	// Log data.
	PassID  pass.ID
	Subject pass.Subject
	KeyID   pass.KeyID
	Source  string
	At      time.Time
	ScanID  int64

	// Origin is what the caller attached with WithOrigin: who asked for
	// the check, so that the answer can be routed back to that screen.
	// The checker passes it through unread and never logs it.
	Origin string
}

type originKey struct{}

// WithOrigin attaches origin to the checks made with ctx: the decisions
// subscribers receive carry it in Decision.Origin.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// Allowed reports whether the holder may pass.
func (d *Decision) Allowed() bool { return d.Decision == Allow }

// Checker runs the check pipeline. It keeps the trust anchors, revocations
// and policy in memory and refreshes them from the store (Refresh, or Run
// in the background), so a check never waits on a query for them. It is
// safe for concurrent use.
type Checker struct {
	db  *store.DB
	now func() time.Time // Config.Now

	state   atomic.Pointer[state]
	refresh sync.Mutex // serialises Refresh

	recent recentSet
	// recentLoaded is closed once the window has been read from the log
	// into recent (or that failed, recentErr); until then misses are
	// confirmed in the log. holdSeed, if set, delays the load (tests).
	recentLoaded chan struct{}
	recentErr    error
	holdSeed     <-chan struct{}
	// stopLoad cancels the load; Close calls it.
	stopLoad context.CancelFunc

	subMu sync.Mutex
	subs  map[chan *Decision]struct{}

	observer Observer // nil: none
}

// Observer learns about every check the pipeline finishes (metrics count
// them). CheckDone runs on the check path after the scan is durable, so it
// must be cheap and never block: a few atomic adds.
type Observer interface {
	// CheckDone reports a check that was logged durably and handed to
	// the subscribers, took after it started, or, with d nil, a check
	// that failed with err and was not logged.
	CheckDone(d *Decision, took time.Duration, err error)
}

// state is an immutable snapshot of what a check needs; Refresh builds a
// new one and swaps it in.
type state struct {
	verifier   *pass.Verifier
	roots      int
	rootKIDs   []pass.KeyID
	policy     store.Policy
	allowed    colorSet
	revSeq     int64
	revSubject map[pass.Subject]time.Time // passes issued before are void
	revPass    map[pass.ID]struct{}
	revIssuer  map[pass.KeyID]struct{}
	loadedAt   time.Time
	// externalWrites is the store's count of other processes' commits
	// when this snapshot was loaded.
	externalWrites int64
}

// Config is what a Checker is built from. DB is required.
type Config struct {
	DB *store.DB
	// Now is the clock (tests use a fixed one); nil: time.Now. It is in
	// force from the first load on.
	Now func() time.Time
	// Observer learns about every check made through Check; nil: none.
	Observer Observer
}

// New returns a Checker loaded from cfg.DB.
func New(ctx context.Context, cfg Config) (*Checker, error) { return newChecker(ctx, cfg, nil) }

// newChecker is New with the repeat window's load held until holdSeed is
// closed (nil: not held), so that tests see a checker still loading.
func newChecker(ctx context.Context, cfg Config, holdSeed <-chan struct{}) (*Checker, error) {
	c := &Checker{db: cfg.DB, now: cfg.Now, observer: cfg.Observer, holdSeed: holdSeed, subs: make(map[chan *Decision]struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	c.recent.init()
	c.recentLoaded = make(chan struct{})
	if err := c.Refresh(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Refresh reloads trust anchors and policy and appends new revocations.
func (c *Checker) Refresh(ctx context.Context) error {
	c.refresh.Lock()
	defer c.refresh.Unlock()

	roots, revIssuerKeys, err := c.loadRoots(ctx)
	if err != nil {
		return err
	}
	pol, err := c.db.Policy(ctx)
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	old := c.state.Load()
	now := c.now()
	ext, err := c.syncRecent(ctx, old, now, pol.RepeatWindow)
	if err != nil {
		return err
	}
	ns := &state{policy: *pol, roots: len(roots), loadedAt: now, externalWrites: ext}
	ns.allowed = colorsOf(pol)
	// Roots rarely change; keep the verifier (and its certificate cache)
	// when they did not.
	if old != nil && sameRoots(old, roots) {
		ns.verifier = old.verifier
	} else {
		ns.verifier = pass.NewVerifier(roots)
	}
	ns.rootKIDs = kidsOf(roots)
	if err := c.loadRevocations(ctx, old, ns, revIssuerKeys); err != nil {
		return err
	}
	c.state.Store(ns)
	return nil
}

// loadRoots returns the root keys a pass may chain to now, and the keys
// (of any role) that were revoked.
func (c *Checker) loadRoots(ctx context.Context) ([]pass.Root, map[pass.KeyID]struct{}, error) {
	keys, err := c.db.FindKeys(ctx, store.KeyFilter{})
	if err != nil {
		return nil, nil, fmt.Errorf("load trust anchors: %w", err)
	}
	var roots []pass.Root
	revIssuerKeys := make(map[pass.KeyID]struct{})
	for _, k := range keys {
		if !k.RevokedAt.IsZero() {
			revIssuerKeys[k.KID] = struct{}{}
			continue
		}
		if k.Role != store.RoleRoot {
			continue
		}
		if !k.NotAfter.IsZero() && c.now().After(k.NotAfter) {
			continue // replaced by a rotation, and its grace is over
		}
		pk, err := pass.ParsePublicKey(k.Alg, k.Public)
		if err != nil {
			return nil, nil, fmt.Errorf("load root key %s: %w", k.KID, err)
		}
		roots = append(roots, pass.Root{District: k.District, Key: pk})
	}
	return roots, revIssuerKeys, nil
}

// syncRecent brings the repeat set up to date with the scan log and
// returns the log's external write count it has now seen.
func (c *Checker) syncRecent(ctx context.Context, old *state, now time.Time, window time.Duration) (int64, error) {
	// Another process (the CLI, an import) may have logged checks the
	// repeat set has not seen; so may this process before a restart.
	ext, err := c.db.ExternalWrites(ctx)
	if err != nil {
		return 0, err
	}
	switch {
	case old == nil:
		// At start, learn the window from the log in the background.
		c.loadRecent(ctx, now, window)
	case ext != old.externalWrites || window > old.policy.RepeatWindow:
		c.recent.distrust(now.Add(window))
	}
	return ext, nil
}

// loadRevocations fills ns's revocation sets: old's, plus the
// revocations logged since, plus the revoked keys. Maps shared with old
// are copied before they change.
func (c *Checker) loadRevocations(ctx context.Context, old, ns *state, revIssuerKeys map[pass.KeyID]struct{}) error {
	var since int64
	if old != nil {
		since = old.revSeq
		ns.revSeq = old.revSeq
	}
	revs, err := c.db.RevocationsSince(ctx, since)
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	if old != nil && len(revs) == 0 {
		ns.revSubject, ns.revPass, ns.revIssuer = old.revSubject, old.revPass, old.revIssuer
	} else {
		ns.revSubject = make(map[pass.Subject]time.Time)
		ns.revPass = make(map[pass.ID]struct{})
		ns.revIssuer = make(map[pass.KeyID]struct{})
		if old != nil {
			maps.Copy(ns.revSubject, old.revSubject)
			maps.Copy(ns.revPass, old.revPass)
			maps.Copy(ns.revIssuer, old.revIssuer)
		}
		for _, r := range revs {
			applyRevocation(ns, r)
			ns.revSeq = r.Seq
		}
	}
	if len(revIssuerKeys) > 0 {
		if len(revs) == 0 && old != nil {
			// Do not mutate the map shared with the old snapshot.
			m := make(map[pass.KeyID]struct{}, len(ns.revIssuer)+len(revIssuerKeys))
			maps.Copy(m, ns.revIssuer)
			ns.revIssuer = m
		}
		maps.Copy(ns.revIssuer, revIssuerKeys)
	}
	return nil
}

// loadRecent starts loading the passes checked within the repeat window
// into the repeat set and returns at once: reading millions of scans takes
// seconds, and the gate must check from the start. Until the load is done
// every miss in the set is confirmed in the scan log (one indexed lookup),
// so a repeat is reported as one from the first check on, never as a
// first use. If the load fails or the window holds more than the set can,
// misses are confirmed for one window instead.
func (c *Checker) loadRecent(ctx context.Context, now time.Time, window time.Duration) {
	if window <= 0 {
		close(c.recentLoaded)
		return
	}
	c.recent.setLoading(true)
	ctx, c.stopLoad = context.WithCancel(ctx)
	go func() {
		defer close(c.recentLoaded)
		if c.holdSeed != nil {
			select {
			case <-c.holdSeed:
			case <-ctx.Done():
			}
		}
		c.recentErr = c.seedRecent(ctx, now, window)
		if c.recentErr != nil {
			c.recent.distrust(now.Add(window))
		}
		c.recent.setLoading(false)
	}()
}

// Close stops loading the repeat window, if that still runs, and returns
// once nothing of the checker reads the store any more: the store may be
// closed after it. Checks made after Close still work, confirming every
// miss in the scan log. Close may be called more than once.
func (c *Checker) Close() {
	if c.stopLoad != nil {
		c.stopLoad()
	}
	<-c.recentLoaded
}

// RepeatSetLoaded is closed once the repeat window has been loaded from
// the scan log after start; RepeatSetErr then says whether that failed.
// Checks do not wait for it.
func (c *Checker) RepeatSetLoaded() <-chan struct{} { return c.recentLoaded }

// RepeatSetErr is why loading the repeat window failed, nil if it did not;
// valid once RepeatSetLoaded is closed.
func (c *Checker) RepeatSetErr() error {
	select {
	case <-c.recentLoaded:
		return c.recentErr
	default:
		return nil
	}
}

// seedRecent loads the passes checked within the repeat window into the
// repeat set.
func (c *Checker) seedRecent(ctx context.Context, now time.Time, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	complete, err := c.db.RecentPasses(ctx, now.Add(-window), maxRecent/2, func(sp store.SeenPass) {
		c.recent.remember(sp.ID, sp.At)
	})
	if err != nil {
		return fmt.Errorf("load recent checks: %w", err)
	}
	if !complete {
		c.recent.distrust(now.Add(window))
	}
	return nil
}

func applyRevocation(s *state, r *store.Revocation) {
	switch r.Kind {
	case store.RevokeSubject:
		var sub pass.Subject
		if len(r.Target) == len(sub) {
			copy(sub[:], r.Target)
			if r.Before.After(s.revSubject[sub]) {
				s.revSubject[sub] = r.Before
			}
		}
	case store.RevokePass:
		var id pass.ID
		if len(r.Target) == len(id) {
			copy(id[:], r.Target)
			s.revPass[id] = struct{}{}
		}
	case store.RevokeIssuer:
		var kid pass.KeyID
		if len(r.Target) == len(kid) {
			copy(kid[:], r.Target)
			s.revIssuer[kid] = struct{}{}
		}
	}
}

func kidsOf(roots []pass.Root) []pass.KeyID {
	out := make([]pass.KeyID, len(roots))
	for i, r := range roots {
		out[i] = r.Key.KID
	}
	slices.SortFunc(out, func(a, b pass.KeyID) int { return strings.Compare(string(a[:]), string(b[:])) })
	return out
}

func sameRoots(old *state, roots []pass.Root) bool {
	return slices.Equal(old.rootKIDs, kidsOf(roots))
}

// Run refreshes the checker every interval until ctx ends, so changes made
// by other processes (the CLI, a sync) reach the gate within interval.
func (c *Checker) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
		}
	}
}

// Policy returns the policy in force.
func (c *Checker) Policy() store.Policy { return c.state.Load().policy }

// ListsLoadedAt is when trust, revocations and policy were last loaded.
func (c *Checker) ListsLoadedAt() time.Time { return c.state.Load().loadedAt }

// Roots is how many trusted root keys are loaded.
func (c *Checker) Roots() int { return c.state.Load().roots }

// Evaluate decides on raw input at time now without logging it and without
// repeat detection. It is the pure part of the pipeline: decode, verify the
// chain, revocation, policy.
func (c *Checker) Evaluate(raw string, now time.Time) *Decision {
	d := &Decision{Decision: Deny, At: now}
	if len(raw) > MaxInput {
		d.Reason = ReasonTooLong
		return d
	}
	s := c.state.Load()
	p, err := s.verifier.Verify(clean(raw), now, s.policy.ClockSkew)
	if err != nil {
		d.Reason = reasonOf(err)
		// Only input that already failed pays for this: a pass corrupted
		// the way a wrong scanner keyboard setting corrupts it gets a
		// reason that tells staff how to fix the scanner.
		if d.Reason == ReasonNotAPass || d.Reason == ReasonMalformed {
			if r, ok := layoutReason(raw); ok {
				d.Reason = r
			}
		}
		return d
	}
	d.Name, d.IDTail = p.Name, p.IDTail
	d.Color, d.Kind, d.Doses = p.Color, p.Kind, p.Doses
	d.TestedAt, d.IssuedAt, d.ExpiresAt = p.TestedAt, p.IssuedAt, p.ExpiresAt
	d.PassID, d.Subject, d.KeyID = p.ID, p.Subject, p.KeyID
	d.Reason = s.judge(p, now)
	if d.Reason == ReasonOK {
		d.Decision = Allow
	}
	return d
}

// judge applies revocations and policy to a verified pass.
func (s *state) judge(p *pass.Pass, now time.Time) Reason {
	pol := &s.policy
	// A test taken in the future is no test result: the desk refuses one,
	// so a pass carrying one was not made by an honest issuer.
	if !p.TestedAt.IsZero() && p.TestedAt.After(now.Add(pol.ClockSkew)) {
		return ReasonMalformed
	}
	if _, ok := s.revIssuer[p.KeyID]; ok {
		return ReasonIssuerRevoked
	}
	if _, ok := s.revPass[p.ID]; ok {
		return ReasonRevoked
	}
	// A subject revocation voids the passes issued before its cutoff plus
	// the clock tolerance: issue times are the issuer's clock and the
	// cutoff the revoking appliance's, each of which may be off by the
	// tolerance, and a pass dated ahead within it must not outlive a
	// status change (see district.issueTime for how a pass issued after
	// the change is dated).
	if before, ok := s.revSubject[p.Subject]; ok && p.IssuedAt.Before(before.Add(pol.ClockSkew)) {
		return ReasonRevoked
	}
	return judgePolicy(pol, &s.allowed, &p.Claims, now)
}

// clean strips what scanners add around a code: line endings, spaces and
// NULs.
func clean(raw string) string {
	return strings.Trim(raw, " \t\r\n\x00")
}

// Check runs the whole pipeline for input from source: evaluate, flag a
// repeat, log the scan durably, then tell subscribers. It returns only once
// the scan record is durable; an error means the check was not logged and
// must not be shown as done.
func (c *Checker) Check(ctx context.Context, source, raw string) (*Decision, error) {
	if c.observer == nil {
		return c.check(ctx, source, raw)
	}
	// The wall clock, not c.now: tests run the checker on a fixed clock,
	// and the latency is real time spent.
	start := time.Now()
	d, err := c.check(ctx, source, raw)
	c.observer.CheckDone(d, time.Since(start), err)
	return d, err
}

func (c *Checker) check(ctx context.Context, source, raw string) (*Decision, error) {
	now := c.now()
	d := c.Evaluate(raw, now)
	d.Source = source
	d.Origin, _ = ctx.Value(originKey{}).(string)
	if !d.PassID.IsZero() {
		rep, err := c.isRepeat(ctx, d.Subject, d.PassID, now)
		if err != nil {
			return nil, err
		}
		d.Repeat = rep
	}
	sc := store.Scan{
		At: now, Source: source, Decision: string(d.Decision), Reason: string(d.Reason),
		Repeat: d.Repeat, PassID: d.PassID, Subject: d.Subject, KID: d.KeyID,
	}
	if err := c.db.LogScan(ctx, &sc); err != nil {
		return nil, fmt.Errorf("log scan: %w", err)
	}
	d.ScanID = sc.ID
	c.publish(d)
	return d, nil
}

// isRepeat reports whether pass id was checked within the repeat window
// before now, and remembers this check. The in-memory set answers alone
// once it is known to be complete; until then a miss is confirmed in the
// scan log.
func (c *Checker) isRepeat(ctx context.Context, subject pass.Subject, id pass.ID, now time.Time) (bool, error) {
	window := c.state.Load().policy.RepeatWindow
	if window <= 0 {
		return false, nil
	}
	repeat, confirm := c.recent.check(id, now, window)
	if !confirm {
		return repeat, nil
	}
	_, err := c.db.LastSeen(ctx, subject, id, now.Add(-window))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("repeat lookup: %w", err)
	}
}

// Subscribe returns a channel that receives every decision made after the
// call, and a function to stop. A subscriber too slow to keep up misses
// decisions rather than slowing checks.
func (c *Checker) Subscribe(buffer int) (<-chan *Decision, func()) {
	ch := make(chan *Decision, buffer)
	c.subMu.Lock()
	c.subs[ch] = struct{}{}
	c.subMu.Unlock()
	return ch, func() {
		c.subMu.Lock()
		if _, ok := c.subs[ch]; ok {
			delete(c.subs, ch)
			close(ch)
		}
		c.subMu.Unlock()
	}
}

func (c *Checker) publish(d *Decision) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- d:
		default:
		}
	}
}
