package districtsync

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"passgate/store"
)

// Intervals of the appliance's sync loop.
const (
	// PullEvery is how often the feed is pulled: a revocation made
	// anywhere reaches an online appliance within about twice this.
	PullEvery = 2 * time.Second
	// pushEvery is how often the outbox is looked at when it was empty.
	pushEvery = 500 * time.Millisecond
	// Backoff after a failure: from backoffMin, doubling, up to
	// backoffMax, with full jitter so that appliances cut off together do
	// not all come back in the same instant.
	backoffMin = 200 * time.Millisecond
	backoffMax = 30 * time.Second
	// logRepeat: the same failure is logged again at most this often.
	logRepeat = time.Minute
	// statusEvery: how often the loop logs where it stands.
	statusEvery = 10 * time.Minute
)

// ErrNoHubAddress: the appliance was enrolled offline without a hub
// address; it syncs by bundles only.
var ErrNoHubAddress = errors.New("enrolled without a hub address: sync by bundles only")

// SyncStatus is what the Syncer last saw, for status pages and logs.
type SyncStatus struct {
	Hub         string // the hub's address
	Appliance   string // this appliance's name at the hub
	Running     bool
	LastPull    time.Time // last successful pull
	LastPush    time.Time // last successful push that carried records
	Backlog     int64     // records waiting to be pushed, as of the last push
	Pushed      int64     // records acknowledged by the hub since start
	LastError   string
	LastErrorAt time.Time
	Retired     bool // the hub answered that this appliance is retired
}

// Syncer is an enrolled appliance's background sync: it pushes its
// records whenever there are some and pulls the feed every PullEvery and
// right after a push.
type Syncer struct {
	db     *store.DB
	log    *slog.Logger
	client *Client
	wake   chan struct{}

	mu     sync.Mutex
	status SyncStatus
}

// NewSyncer makes the sync loop of the enrolled appliance db.
// store.ErrNotEnrolled when it is not enrolled, ErrNoHubAddress when it
// was enrolled without a hub address.
func NewSyncer(db *store.DB, log *slog.Logger) (*Syncer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := db.SyncHubInfo(context.Background())
	if err != nil {
		return nil, err
	}
	if h.URL == "" {
		return nil, ErrNoHubAddress
	}
	c, err := NewClientCA(h.URL, h.HubCA, h.Token)
	if err != nil {
		return nil, err
	}
	s := &Syncer{db: db, log: log.With("hub", h.URL), client: c, wake: make(chan struct{}, 1)}
	s.status = SyncStatus{Hub: h.URL, Appliance: h.Appliance}
	if st, err := db.FeedState(context.Background()); err == nil {
		s.status.LastPull, s.status.LastPush = st.LastPull, st.LastPush
		s.status.LastError, s.status.LastErrorAt = st.LastError, st.LastErrorAt
	}
	return s, nil
}

// Status returns a copy of what the Syncer last saw.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Wake asks for a push and a pull now (after a change made here).
func (s *Syncer) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// backoff is a retry schedule with exponential growth and full jitter.
type backoff struct{ fails int }

func (b *backoff) next() time.Duration {
	b.fails++
	d := backoffMin << min(b.fails-1, 10)
	d = min(d, backoffMax)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func (b *backoff) reset() { b.fails = 0 }

// Run syncs until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	s.setRunning(true)
	defer s.setRunning(false)
	defer s.client.CloseIdle()
	s.log.Info("sync started", "appliance", s.status.Appliance)
	now := time.Now()
	l := &syncLoop{s: s, nextPull: now, nextPush: now, nextStatus: now.Add(statusEvery)}
	for ctx.Err() == nil {
		if !time.Now().Before(l.nextPush) && !l.push(ctx) {
			return
		}
		if !time.Now().Before(l.nextPull) && !l.pull(ctx) {
			return
		}
		if now = time.Now(); !now.Before(l.nextStatus) {
			st := s.Status()
			s.log.Info("sync status", "backlog", st.Backlog, "pushed", st.Pushed,
				"last_pull_age", durationSince(now, st.LastPull), "last_push_age", durationSince(now, st.LastPush),
				"last_error", st.LastError, "retired", st.Retired)
			l.nextStatus = now.Add(statusEvery)
		}
		if !l.wait(ctx) {
			return
		}
	}
}

// syncLoop is the schedule of one Run: when to push, pull and log next,
// and the last failure logged (a failure repeating is logged once per
// logRepeat).
type syncLoop struct {
	s                  *Syncer
	pushB, pullB       backoff
	nextPull, nextPush time.Time
	nextStatus         time.Time
	lastLogged         string
	lastLoggedAt       time.Time
}

// report records a failed push or pull in the status and logs it.
func (l *syncLoop) report(what string, err error) {
	s := l.s
	msg := what + ": " + err.Error()
	s.mu.Lock()
	s.status.LastError, s.status.LastErrorAt = msg, time.Now()
	var ce *CallError
	if errors.As(err, &ce) && ce.Status == http.StatusForbidden && ce.Err.Code == "retired" {
		s.status.Retired = true
	}
	s.mu.Unlock()
	if msg != l.lastLogged || time.Since(l.lastLoggedAt) > logRepeat {
		s.log.Warn("sync failed; retrying with backoff", "op", what, "err", err)
		l.lastLogged, l.lastLoggedAt = msg, time.Now()
	}
}

func (l *syncLoop) recovered() {
	if l.lastLogged != "" {
		l.s.log.Info("sync reconnected")
		l.lastLogged = ""
	}
}

// push sends one push and schedules the next; false when Run must stop.
func (l *syncLoop) push(ctx context.Context) bool {
	s := l.s
	n, backlog, err := PushOnceLog(ctx, s.db, s.client, s.log)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		l.report("push", err)
		l.nextPush = time.Now().Add(l.pushB.next())
	default:
		l.pushB.reset()
		l.recovered()
		s.mu.Lock()
		s.status.Backlog, s.status.Pushed = backlog, s.status.Pushed+int64(n)
		if n > 0 {
			s.status.LastPush = time.Now()
		}
		s.mu.Unlock()
		if n > 0 && backlog == 0 {
			l.nextPull = time.Now() // what the hub made of it, and anything new
		}
		if backlog > 0 {
			l.nextPush = time.Now()
		} else {
			l.nextPush = time.Now().Add(pushEvery)
		}
	}
	return true
}

// pull applies one pull and schedules the next; false when Run must
// stop.
func (l *syncLoop) pull(ctx context.Context) bool {
	s := l.s
	res, err := PullOnce(ctx, s.db, s.client)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		if errors.Is(err, store.ErrNotEnrolled) {
			s.log.Error("sync stopped: this appliance is no longer enrolled")
			return false
		}
		l.report("pull", err)
		if rerr := s.db.RecordSyncError(context.WithoutCancel(ctx), "pull: "+err.Error()); rerr != nil {
			s.log.Error("record sync error", "err", rerr)
		}
		l.nextPull = time.Now().Add(l.pullB.next())
	default:
		l.pullB.reset()
		l.recovered()
		s.mu.Lock()
		s.status.LastPull, s.status.Retired = time.Now(), false
		s.mu.Unlock()
		s.logFeed(res)
		l.nextPull = time.Now().Add(PullEvery)
	}
	return true
}

// logFeed logs what a pull changed, and warns of the roots it refused.
func (s *Syncer) logFeed(res *PullResult) {
	switch {
	case res.HistoryChanged:
		s.log.Warn("sync feed: hub history changed (restored from a backup?); re-read the whole feed",
			"revocations", res.Revocations, "keys_added", res.KeysAdded)
	case res.Reread:
		s.log.Info("sync feed: new hub feed generation; read the whole feed")
	}
	if res.RootRevocationsRefused > 0 {
		s.log.Warn("sync feed: revocation of a district root refused", "count", res.RootRevocationsRefused)
	}
	if res.RootsRefused > 0 {
		s.log.Warn("sync feed: new district root without a valid rotation record refused", "count", res.RootsRefused)
	}
	if res.RootsRotated > 0 {
		s.log.Info("sync feed: district root rotated", "certificates_updated", res.CertsUpdated)
	}
	if res.KeysAdded+res.KeysRevoked+res.Revocations > 0 || res.PolicyChanged {
		s.log.Info("sync feed applied", "keys_added", res.KeysAdded, "keys_revoked", res.KeysRevoked,
			"revocations", res.Revocations, "policy_changed", res.PolicyChanged)
	}
}

// wait sleeps until the next push or pull is due or Wake is called;
// false when ctx ended.
func (l *syncLoop) wait(ctx context.Context) bool {
	wait := time.Until(l.nextPull)
	if d := time.Until(l.nextPush); d < wait {
		wait = d
	}
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-l.s.wake:
		t.Stop()
		l.nextPush, l.nextPull = time.Now(), time.Now()
	case <-t.C:
	}
	return true
}

func (s *Syncer) setRunning(r bool) {
	s.mu.Lock()
	s.status.Running = r
	s.mu.Unlock()
}

// durationSince is how long ago t was, rounded; -1 for never.
func durationSince(now, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Round(time.Second)
}
