package districtsync

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"passgate/store"
)

// Long polls and contact bookkeeping of a hub serving many appliances.
const (
	// PollWait bounds how long a pull waits for a change: below the
	// server's read timeout (30 s) and any proxy's, so an idle
	// connection is never cut under a waiting pull.
	PollWait = 25 * time.Second
	// feedWatchEvery is how often the hub looks whether its feed moved
	// (one cheap read, whoever changed it: this process, a CLI command,
	// a restore): a revocation reaches the waiting appliances within
	// this plus a round trip.
	feedWatchEvery = 250 * time.Millisecond
	// contactFlushEvery is how often the appliances' contacts are
	// written, all in one transaction.
	contactFlushEvery = 5 * time.Second
	// contactChunk bounds the contacts written in one transaction.
	contactChunk = 500
)

// feedWatch wakes every waiting pull at once when the feed moves: one
// channel, closed and replaced on each change.
type feedWatch struct {
	mu    sync.Mutex
	ch    chan struct{}
	pos   store.FeedPositions // as last seen; ch closes when they move
	known bool                // pos was read
}

func newFeedWatch() *feedWatch { return &feedWatch{ch: make(chan struct{})} }

// changed is closed at the next change after the feed's positions pos
// (known: false before the first read): anything beyond pos closes it.
func (w *feedWatch) changed() (ch <-chan struct{}, pos store.FeedPositions, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch, w.pos, w.known
}

// moved records the feed's new positions and wakes every pull waiting on
// changed.
func (w *feedWatch) moved(pos store.FeedPositions) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.known && w.pos == pos {
		return
	}
	w.pos, w.known = pos, true
	close(w.ch)
	w.ch = make(chan struct{})
}

// watch broadcasts whenever the feed's positions move, until ctx ends.
func (w *feedWatch) watch(ctx context.Context, db *store.DB, every time.Duration, fail func(error)) {
	if pos, err := db.FeedPositions(ctx); err != nil {
		fail(err)
	} else {
		w.moved(pos)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pos, err := db.FeedPositions(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			continue
		}
		w.moved(pos)
	}
}

// contactBook holds the appliances' last contacts until they are written
// in one transaction: a fsync per appliance pull would take the hub's
// writer from its own gates' scan log.
type contactBook struct {
	mu      sync.Mutex
	pending map[int64]store.ApplianceContact
	flushes atomic.Int64 // transactions written, for tests
}

// note keeps c, replacing the appliance's earlier contact.
func (b *contactBook) note(c store.ApplianceContact) {
	b.mu.Lock()
	if b.pending == nil {
		b.pending = make(map[int64]store.ApplianceContact)
	}
	b.pending[c.ID] = c
	b.mu.Unlock()
}

// flush writes what is pending in one transaction; on failure the
// contacts are kept for the next flush unless newer ones came.
func (b *contactBook) flush(ctx context.Context, db *store.DB) error {
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	list := make([]store.ApplianceContact, 0, len(pending))
	for _, c := range pending {
		list = append(list, c)
	}
	// In transactions of contactChunk: a gate's scan, waiting for the
	// writer, waits for one chunk, not for a whole district's.
	var err error
	for len(list) > 0 && err == nil {
		n := min(len(list), contactChunk)
		err = db.TouchAppliances(ctx, list[:n])
		list = list[n:]
		b.flushes.Add(1)
	}
	if err != nil {
		b.mu.Lock()
		for id, c := range pending {
			if _, newer := b.pending[id]; !newer {
				if b.pending == nil {
					b.pending = make(map[int64]store.ApplianceContact)
				}
				b.pending[id] = c
			}
		}
		b.mu.Unlock()
	}
	return err
}

// Run serves the hub's long polls and writes the appliances' contacts
// in batches until ctx ends, then writes the last batch. Without Run, a
// pull answers at once and records its contact itself, as for a hub of
// a few appliances.
func (s *Server) Run(ctx context.Context) {
	s.running.Store(true)
	defer s.running.Store(false)
	fail := func(err error) { s.log.Warn("sync api: watch the feed", "err", err) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watch.watch(ctx, s.db, feedWatchEvery, fail)
	}()
	t := time.NewTicker(s.contactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			if err := s.contacts.flush(context.WithoutCancel(ctx), s.db); err != nil {
				s.log.Error("sync api: record appliance contacts", "err", err)
			}
			return
		case <-t.C:
			if err := s.contacts.flush(ctx, s.db); err != nil && ctx.Err() == nil {
				s.log.Error("sync api: record appliance contacts", "err", err)
			}
		}
	}
}
