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
		if err != nil && ctx.Err() == nil {
			log.Error("retention purge", "err", err)
		}
		if n.Scans+n.Passes+n.Audit > 0 {
			log.Info("retention purge", "scans", n.Scans, "passes", n.Passes, "audit_records", n.Audit)
		}
		t.Reset(retentionEvery)
	}
}

// Purged counts what one retention round deleted.
type Purged struct {
	Scans, Passes, Audit int64
}

// Purge runs one retention round: it deletes, as of now, the scans older than the scan retention,
// the records of passes that expired longer ago than the pass retention,
// and the audit records older than the audit retention. One failing
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
	// Last, so that it never removes the records of this round's purges
	// (they are newer than any boundary anyway).
	n.Audit, err = db.PurgeAudit(ctx, now.Add(-p.AuditRetention), retentionActor)
	errs = append(errs, err)
	return n, errors.Join(errs...)
}
