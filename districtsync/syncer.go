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
	// PullEvery is how often the feed is pulled from a hub that answers
	// at once (one that does not hold pulls until a change): a revocation
	// made anywhere reaches an online appliance within about twice this.
	// A hub that holds pulls is asked again as soon as it answers.
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
// records whenever there are some and, beside that, keeps a pull waiting
// at the hub for the next change of the feed.
type Syncer struct {
	db       *store.DB
	log      *slog.Logger
	client   *Client
	wake     chan struct{}
	pullWake chan struct{}

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
	s := &Syncer{db: db, log: log.With("hub", h.URL), client: c, wake: make(chan struct{}, 1), pullWake: make(chan struct{}, 1)}
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
	signal(s.wake)
	signal(s.pullWake)
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
	ctx, stop := context.WithCancel(ctx)
	now := time.Now()
	l := &syncLoop{s: s, stop: stop, nextPush: now, nextStatus: now.Add(statusEvery)}
	pullDone := make(chan struct{})
	go func() {
		defer close(pullDone)
		l.pullLoop(ctx)
	}()
	defer func() {
		stop()
		<-pullDone
	}()
	for ctx.Err() == nil {
		if !time.Now().Before(l.nextPush) && !l.push(ctx) {
			return
		}
		if now = time.Now(); !now.Before(l.nextStatus) {
			st := s.Status()
			s.log.Info("sync status", "backlog", st.Backlog, "pushed", st.Pushed,
				"last_pull_age", durationSince(now, st.LastPull), "last_push_age", durationSince(now, st.LastPush),
				"last_error", st.LastError, "retired", st.Retired)
			l.nextStatus = now.Add(statusEvery)
		}
		if sleep(ctx, time.Until(l.nextPush), s.wake) {
			l.nextPush = time.Now()
		}
	}
}

// syncLoop is the state of one Run: its pushes' schedule (Run's
// goroutine), its pulls' backoff (the pull loop's goroutine, see
// pullLoop), and the last failure logged (a failure repeating is logged
// once per logRepeat), guarded by the Syncer's mu as both report.
type syncLoop struct {
	s    *Syncer
	stop context.CancelFunc // ends Run and its pull loop

	pushB                backoff
	nextPush, nextStatus time.Time

	pullB backoff
	// returnDue: revocations the hub may have lost are to be handed
	// back once the feed is read to its end (pull loop's goroutine).
	returnDue bool

	lastLogged   string // guarded by s.mu
	lastLoggedAt time.Time
}

// report records a failed push or pull in the status and logs it.
func (l *syncLoop) report(what string, err error) {
	s := l.s
	msg := what + ": " + err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LastError, s.status.LastErrorAt = msg, time.Now()
	var ce *CallError
	if errors.As(err, &ce) && ce.Status == http.StatusForbidden && ce.Err.Code == "retired" {
		s.status.Retired = true
	}
	if msg != l.lastLogged || time.Since(l.lastLoggedAt) > logRepeat {
		s.log.Warn("sync failed; retrying with backoff", "op", what, "err", err)
		l.lastLogged, l.lastLoggedAt = msg, time.Now()
	}
}

// recovered logs the end of a run of failures.
func (l *syncLoop) recovered() {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
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
			// What the hub made of it, and anything new: a hub that
			// holds pulls answers the waiting one when its feed moves,
			// a pull loop sleeping between pulls is woken.
			signal(s.pullWake)
		}
		if backlog > 0 {
			l.nextPush = time.Now()
		} else {
			l.nextPush = time.Now().Add(pushEvery)
		}
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

// sleep waits d, or less if wake is signalled (then true) or ctx ends.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
		return true
	case <-t.C:
	}
	return false
}

// signal wakes whoever sleeps on c, or will next, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
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
