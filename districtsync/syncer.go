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

	mu           sync.Mutex
	status       SyncStatus
	lastLogged   string // the failure logged last; "" after a success
	lastLoggedAt time.Time
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
	for _, c := range []chan struct{}{s.wake, s.pullWake} {
		select {
		case c <- struct{}{}:
		default:
		}
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
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pullDone := make(chan struct{})
	go func() {
		defer close(pullDone)
		s.pullLoop(ctx, stop)
	}()
	defer func() { <-pullDone }()
	var pushB backoff
	now := time.Now()
	nextPush := now
	nextStatus := now.Add(statusEvery)
	for ctx.Err() == nil {
		now = time.Now()
		if !now.Before(nextPush) {
			n, backlog, err := PushOnceLog(ctx, s.db, s.client, s.log)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.report("push", err)
				nextPush = time.Now().Add(pushB.next())
			default:
				pushB.reset()
				s.recovered()
				s.mu.Lock()
				s.status.Backlog, s.status.Pushed = backlog, s.status.Pushed+int64(n)
				if n > 0 {
					s.status.LastPush = time.Now()
				}
				s.mu.Unlock()
				if backlog > 0 {
					nextPush = time.Now()
				} else {
					nextPush = time.Now().Add(pushEvery)
				}
			}
		}
		if now = time.Now(); !now.Before(nextStatus) {
			st := s.Status()
			s.log.Info("sync status", "backlog", st.Backlog, "pushed", st.Pushed,
				"last_pull_age", durationSince(now, st.LastPull), "last_push_age", durationSince(now, st.LastPush),
				"last_error", st.LastError, "retired", st.Retired)
			nextStatus = now.Add(statusEvery)
		}
		if sleep(ctx, time.Until(nextPush), s.wake) {
			nextPush = time.Now()
		}
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

// report records and logs a failure of what (the same one at most every
// logRepeat).
func (s *Syncer) report(what string, err error) {
	msg := what + ": " + err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LastError, s.status.LastErrorAt = msg, time.Now()
	var ce *CallError
	if errors.As(err, &ce) && ce.Status == http.StatusForbidden && ce.Err.Code == "retired" {
		s.status.Retired = true
	}
	if msg != s.lastLogged || time.Since(s.lastLoggedAt) > logRepeat {
		s.log.Warn("sync failed; retrying with backoff", "op", what, "err", err)
		s.lastLogged, s.lastLoggedAt = msg, time.Now()
	}
}

// recovered logs the end of a run of failures.
func (s *Syncer) recovered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastLogged != "" {
		s.log.Info("sync reconnected")
		s.lastLogged = ""
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
