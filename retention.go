package main

import (
	"context"
	"log/slog"
	"time"

	"passgate/metrics"
	"passgate/store"
)

// retentionEvery is how often scans past the retention period are purged.
const retentionEvery = time.Hour

// runRetention purges scans older than the policy's retention period soon
// after start and then every retentionEvery, in small batches that never
// stall checking, until ctx ends. Each purge is audited by the store and
// its rows are counted in m (nil: not counted).
func runRetention(ctx context.Context, db *store.DB, log *slog.Logger, m *metrics.Metrics) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := purgeOnce(ctx, db, time.Now())
		m.Purged("scans", n) // a purge that failed part-way still deleted n
		if err != nil && ctx.Err() == nil {
			log.Error("retention purge", "err", err)
		} else if n > 0 {
			log.Info("retention purge", "scans", n)
		}
		t.Reset(retentionEvery)
	}
}

// purgeOnce deletes the scans older than the retention period at now.
func purgeOnce(ctx context.Context, db *store.DB, now time.Time) (int64, error) {
	p, err := db.Policy(ctx)
	if err != nil {
		return 0, err
	}
	return db.PurgeScans(ctx, now.Add(-p.ScanRetention), 1000, "retention")
}
