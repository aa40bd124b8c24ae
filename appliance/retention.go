package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"passgate/metrics"
	"passgate/store"
)

// retentionEvery is how often data past its retention period is purged.
const retentionEvery = time.Hour

// retentionBatch is the most rows one purge transaction deletes. The
// store sizes transactions by time below that (store/purge.go), so a slow
// disk gets smaller ones and the scan log keeps its turn at the writer.
const retentionBatch = 1000

// retentionActor is who purges in the audit trail.
const retentionActor = "retention"

// runRetention purges scans, pass records and audit records past their
// retention periods (policy) soon after start and then every
// retentionEvery, until ctx ends. Each purge runs in small batches that
// never stall checking and is audited by the store; the rows are counted
// in m (nil: not counted). A failure is logged and retried at the next
// round: retention must never stop the appliance.
func runRetention(ctx context.Context, db *store.DB, log *slog.Logger, m *metrics.Metrics) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := Purge(ctx, db, time.Now())
		// A purge that failed part-way still deleted what it counted.
		m.Purged("scans", n.Scans)
		m.Purged("passes", n.Passes)
		m.Purged("audit", n.Audit)
		m.Purged("district_scans", n.DistrictScans)
		m.Purged("district_events", n.DistrictEvents.Total())
		m.Purged("sync_marks", n.SyncMarks)
		if err != nil && ctx.Err() == nil {
			log.Error("retention purge", "err", err)
		}
		if n.Scans+n.Passes+n.Audit+n.DistrictScans+n.DistrictEvents.Total()+n.SyncMarks > 0 {
			log.Info("retention purge", "scans", n.Scans, "passes", n.Passes, "audit_records", n.Audit,
				"district_scans", n.DistrictScans, "district_records", n.DistrictEvents.Total(), "sync_marks", n.SyncMarks)
		}
		t.Reset(retentionEvery)
	}
}

// Purged counts what one retention round deleted.
type Purged struct {
	Scans, Passes, Audit int64
	// At a hub: its appliances' scans and records, and the exactly-once
	// marks of their past epochs.
	DistrictScans  int64
	DistrictEvents store.PurgedEvents
	SyncMarks      int64
}

// Purge runs one retention round: it deletes, as of now, the scans older than the scan retention,
// the records of passes that expired longer ago than the pass retention,
// and the audit records older than the audit retention. At a hub it
// deletes its appliances' records under the same periods and collects
// the marks of their past epochs (store/hubretention.go); an appliance
// has none of those. One failing
// purge does not keep the others from running; their errors are joined.
func Purge(ctx context.Context, db *store.DB, now time.Time) (Purged, error) {
	var n Purged
	p, err := db.Policy(ctx)
	if err != nil {
		return n, fmt.Errorf("retention: %w", err)
	}
	var errs []error
	n.Scans, err = db.PurgeScans(ctx, now.Add(-p.ScanRetention), retentionBatch, retentionActor)
	errs = append(errs, err)
	n.Passes, err = db.PurgePasses(ctx, now.Add(-p.PassRetention), retentionBatch, retentionActor)
	errs = append(errs, err)
	n.DistrictScans, err = db.PurgeDistrictScans(ctx, now.Add(-p.ScanRetention), retentionBatch, retentionActor)
	errs = append(errs, err)
	n.DistrictEvents, err = db.PurgeDistrictEvents(ctx, store.RetentionOf(p, now), retentionBatch, retentionActor)
	errs = append(errs, err)
	n.SyncMarks, err = db.CollectSyncMarks(ctx, p, now, retentionBatch, retentionActor)
	errs = append(errs, err)
	// Last, so that it never removes the records of this round's purges
	// (they are newer than any boundary anyway).
	n.Audit, err = db.PurgeAudit(ctx, now.Add(-p.AuditRetention), retentionActor)
	errs = append(errs, err)
	return n, errors.Join(errs...)
}
