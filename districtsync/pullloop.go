package districtsync

import (
	"context"
	"errors"
	"time"

	"passgate/store"
)

// waitMargin is how long past PollWait an appliance waits for the answer
// to a waiting pull before it gives the connection up: a hub cut off
// mid-wait (a partition) shows as a failed pull, not as a pull that hangs.
const waitMargin = 15 * time.Second

// pullLoop keeps a pull waiting at the hub: the hub answers when the feed
// changes (or after PollWait), and the next pull leaves at once. A hub
// that answers at once is asked every PullEvery; failures back off. It
// ends with ctx, and ends Run (stop) when the appliance is no longer
// enrolled.
func (l *syncLoop) pullLoop(ctx context.Context) {
	l.returnDue = true
	for ctx.Err() == nil {
		wait, ok := l.pull(ctx)
		if !ok {
			l.stop()
			return
		}
		sleep(ctx, wait, l.s.pullWake)
	}
}

// pull applies one pull (waiting at the hub when longPoll allows) and
// says how long to wait before the next; false when Run must stop.
func (l *syncLoop) pull(ctx context.Context) (time.Duration, bool) {
	s := l.s
	started := time.Now()
	var res *PullResult
	var err error
	if l.longPoll(ctx) {
		wctx, cancel := context.WithTimeout(ctx, PollWait+waitMargin)
		res, err = PullWait(wctx, s.db, s.client)
		cancel()
	} else {
		res, err = PullOnce(ctx, s.db, s.client)
	}
	switch {
	case ctx.Err() != nil:
		return 0, false
	case err != nil:
		if errors.Is(err, store.ErrNotEnrolled) {
			s.log.Error("sync stopped: this appliance is no longer enrolled")
			return 0, false
		}
		l.report("pull", err)
		if rerr := s.db.RecordSyncError(context.WithoutCancel(ctx), "pull: "+err.Error()); rerr != nil {
			s.log.Error("record sync error", "err", rerr)
		}
		return l.pullB.next(), true
	}
	l.pullB.reset()
	l.recovered()
	s.mu.Lock()
	s.status.LastPull, s.status.Retired = time.Now(), false
	s.mu.Unlock()
	s.logFeed(res)
	l.returnLost(ctx, res)
	if res.KeysAdded+res.KeysRevoked+res.Revocations > 0 || res.PolicyChanged || res.Reread {
		return 0, true
	}
	// Nothing new: a hub that held the pull is asked again at once, one
	// that answered at once in PullEvery.
	return PullEvery - time.Since(started), true
}

// longPoll tells whether a pull may wait at the hub: the age of the
// lists counts from the last answer, so a pull is held only where the
// policy's "stale after" leaves room for a whole wait; with a tighter
// one the appliance asks every PullEvery and its lists' age stays exact.
func (l *syncLoop) longPoll(ctx context.Context) bool {
	p, err := l.s.db.Policy(ctx)
	if err != nil {
		return false
	}
	stale := p.StaleAfter
	if stale <= 0 {
		stale = store.DefaultStaleAfter
	}
	return stale >= 2*PollWait
}
