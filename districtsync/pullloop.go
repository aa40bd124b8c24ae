package districtsync

import (
	"context"
	"errors"
	"time"

	"passgate/store"
)

// pullLoop keeps a pull waiting at the hub: the hub answers when the feed
// changes (or after PollWait), and the next pull leaves at once. A hub
// that answers at once is asked every PullEvery; failures back off. An
// appliance no longer enrolled calls stop.
func (s *Syncer) pullLoop(ctx context.Context, stop func()) {
	var b backoff
	for ctx.Err() == nil {
		started := time.Now()
		res, err := PullWait(ctx, s.db, s.client)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if errors.Is(err, store.ErrNotEnrolled) {
				s.log.Error("sync stopped: this appliance is no longer enrolled")
				stop()
				return
			}
			s.report("pull", err)
			if rerr := s.db.RecordSyncError(context.WithoutCancel(ctx), "pull: "+err.Error()); rerr != nil {
				s.log.Error("record sync error", "err", rerr)
			}
			wait = b.next()
		default:
			b.reset()
			s.recovered()
			s.mu.Lock()
			s.status.LastPull, s.status.Retired = time.Now(), false
			s.mu.Unlock()
			s.logPulled(res)
			if res.KeysAdded+res.KeysRevoked+res.Revocations == 0 && !res.PolicyChanged {
				// Nothing new: a hub that held the pull is asked again
				// at once, one that answered at once in PullEvery.
				wait = PullEvery - time.Since(started)
			}
		}
		sleep(ctx, wait, s.pullWake)
	}
}

// logPulled logs what a pull changed.
func (s *Syncer) logPulled(res *PullResult) {
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
