package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Audit actions of the city dashboard's requests at a district hub.
const (
	// AuditCityFiguresAnswered: the hub answered the city console's
	// dashboard requests of one city officer (actor "city:<asker>");
	// recorded at most once per officer per few minutes, the detail
	// counting the answers since the last record.
	AuditCityFiguresAnswered = "city_figures_answered"
	// AuditCityFiguresRefused: the hub refused a dashboard request (not
	// one passgate makes).
	AuditCityFiguresRefused = "city_figures_refused"
)

// HubFigures are a district hub's figures for the city's dashboard: how
// busy its gates are and how fresh its appliances' lists are. No person
// is in them.
type HubFigures struct {
	// CountedTo is the end of the last whole 5-minute bucket of the scan
	// counts: Scans5m and ScansHour count the 5 minutes and the hour
	// before it, so that two readings within a bucket agree.
	CountedTo time.Time
	Scans5m   int64
	ScansHour int64
	// AllowToday and DenyToday count the district's day so far (from
	// its local midnight, the current bucket included).
	AllowToday, DenyToday int64
	// Appliances is the appliances enrolled and not retired; Seen, those
	// that called in within the SeenWithin before now.
	Appliances, Seen int64
	// ListAges are how long ago each appliance last took the hub's lists
	// (revocations, trust, policy: one pull takes them all), oldest
	// first; an appliance that never pulled counts from its enrolment.
	ListAges []time.Duration
	// Revocations is how many revocations the hub holds (its district's
	// and, linked to the city, every other's).
	Revocations int64
}

// SeenWithin is how recently an appliance must have called in to count
// as seen: appliances pull every few seconds to a minute.
const SeenWithin = 10 * time.Minute

// HubFigures reads the figures at now, the day starting at dayStart,
// in one read transaction. Its cost does not grow with the scan log: the
// scans are read from the dashboard's 5-minute counts (a range of their
// primary key), the rest is one row per appliance and a count of the
// revocations.
func (db *DB) HubFigures(ctx context.Context, now, dayStart time.Time) (*HubFigures, error) {
	f := &HubFigures{}
	bucket := timeCountBucket.Milliseconds()
	to := now.UnixMilli() - now.UnixMilli()%bucket
	f.CountedTo = time.UnixMilli(to)
	hour := to - time.Hour.Milliseconds()
	err := db.view(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT
				coalesce(sum(iif(bucket_ms >= ?1 - 300000 AND bucket_ms < ?1, n, 0)), 0),
				coalesce(sum(iif(bucket_ms >= ?2 AND bucket_ms < ?1, n, 0)), 0),
				coalesce(sum(iif(bucket_ms >= ?3 AND decision = 'allow', n, 0)), 0),
				coalesce(sum(iif(bucket_ms >= ?3 AND decision = 'deny', n, 0)), 0)
			FROM scan_counts_time WHERE bucket_ms >= min(?2, ?3) AND bucket_ms <= ?1`,
			to, hour, dayStart.UnixMilli()).Scan(&f.Scans5m, &f.ScansHour, &f.AllowToday, &f.DenyToday); err != nil {
			return fmt.Errorf("scans: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT coalesce(last_contact_ms, enrolled_ms) AS t FROM appliances
			WHERE enrolled_ms IS NOT NULL AND retired_ms IS NULL ORDER BY t`)
		if err != nil {
			return fmt.Errorf("appliances: %w", err)
		}
		defer rows.Close()
		seen := now.Add(-SeenWithin).UnixMilli()
		for rows.Next() {
			var t int64
			if err := rows.Scan(&t); err != nil {
				return fmt.Errorf("appliances: %w", err)
			}
			f.Appliances++
			if t >= seen {
				f.Seen++
			}
			f.ListAges = append(f.ListAges, max(now.Sub(time.UnixMilli(t)), 0))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("appliances: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM revocations`).Scan(&f.Revocations); err != nil {
			return fmt.Errorf("revocations: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub figures: %w", err)
	}
	return f, nil
}
