package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The dashboard's queries. Each is one statement over the counts kept as
// scans are logged (this appliance's by the scan writer, once per group
// commit; at a hub, those its appliances sent by a trigger), reading only the
// window's range of the counts' primary key: the cost follows the number
// of buckets and sources in the window, not the number of checks.
// ?1 and ?2 bound the window in Unix milliseconds.
const (
	// dashBucketsSQL counts checks per decision per bucket of ?3 ms.
	dashBucketsSQL = `
		SELECT (bucket_ms - ?1) / ?3 AS b, sum(iif(decision = 'allow', n, 0)), sum(iif(decision = 'deny', n, 0))
		FROM scan_counts_time WHERE bucket_ms >= ?1 AND bucket_ms < ?2
		GROUP BY b`
	// dashReasonsSQL counts the denied checks per reason.
	dashReasonsSQL = `
		SELECT reason, sum(n) AS c FROM scan_counts_time
		WHERE bucket_ms >= ?1 AND bucket_ms < ?2 AND decision = 'deny'
		GROUP BY reason ORDER BY c DESC, reason`
	// dashSourcesSQL counts checks per decision per appliance and
	// source; appliance 0 is this one.
	dashSourcesSQL = `
		SELECT coalesce(a.name, ''), c.source, c.allow, c.deny FROM (
			SELECT appliance, source, sum(allow) AS allow, sum(deny) AS deny FROM scan_counts_source
			WHERE bucket_ms >= ?1 AND bucket_ms < ?2 GROUP BY appliance, source) AS c
		LEFT JOIN appliances a ON a.id = c.appliance
		ORDER BY c.allow + c.deny DESC, 1, 2`
	// dashPlacesSQL counts checks per place: this appliance's entrance
	// of a source where an admin named one, else the source; an
	// appliance's source at a hub. The ?3 busiest.
	dashPlacesSQL = `
		SELECT coalesce(a.name, ''), coalesce(e.entrance, c.source), sum(c.allow + c.deny) AS n
		FROM scan_counts_source c
		LEFT JOIN appliances a ON a.id = c.appliance
		LEFT JOIN input_entrances e ON c.appliance = 0 AND e.source = c.source
		WHERE c.bucket_ms >= ?1 AND c.bucket_ms < ?2
		GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT ?3`
)

// Widths of the counts' buckets (see the dash migration).
const (
	timeCountBucket   = 5 * time.Minute
	sourceCountBucket = 15 * time.Minute
)

// DecisionCount is a number of checks by decision.
type DecisionCount struct {
	Allow, Deny int64
}

// Total is every check counted.
func (c DecisionCount) Total() int64 { return c.Allow + c.Deny }

// ReasonCount is the number of denied checks for one reason.
type ReasonCount struct {
	Reason string
	N      int64
}

// SourceCount is the checks of one scan source. Appliance is empty for
// this appliance's own sources, else the name of the appliance at this
// hub that logged them.
type SourceCount struct {
	Appliance string
	Source    string
	DecisionCount
}

// PlaceCount is the checks at one place: an entrance, or a source without
// one. Appliance as in SourceCount.
type PlaceCount struct {
	Appliance string
	Place     string
	N         int64
}

// ChecksPerBucket counts the checks in [from, to) by decision in buckets
// of width step, the first starting at from. from and step must be whole
// multiples of 5 minutes (a local midnight is, in every zone in use).
func (db *DB) ChecksPerBucket(ctx context.Context, from, to time.Time, step time.Duration) ([]DecisionCount, error) {
	if step < timeCountBucket || step%timeCountBucket != 0 || !to.After(from) ||
		from.UnixMilli()%timeCountBucket.Milliseconds() != 0 {
		return nil, fmt.Errorf("checks per bucket: %w: window or step", ErrInvalid)
	}
	span := to.UnixMilli() - from.UnixMilli()
	n := (span + step.Milliseconds() - 1) / step.Milliseconds()
	if n > 10000 {
		return nil, fmt.Errorf("checks per bucket: %w: %d buckets", ErrInvalid, n)
	}
	out := make([]DecisionCount, n)
	err := db.dashQuery(ctx, dashBucketsSQL, []any{from.UnixMilli(), to.UnixMilli(), step.Milliseconds()}, func(rows *sql.Rows) error {
		var b int64
		var c DecisionCount
		if err := rows.Scan(&b, &c.Allow, &c.Deny); err != nil {
			return err
		}
		if b >= 0 && b < n {
			out[b] = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checks per bucket: %w", err)
	}
	return out, nil
}

// DenyReasons counts the denied checks in [from, to) per reason, most
// frequent first. The window is counted in whole 5-minute buckets.
func (db *DB) DenyReasons(ctx context.Context, from, to time.Time) ([]ReasonCount, error) {
	var out []ReasonCount
	err := db.dashQuery(ctx, dashReasonsSQL, []any{from.UnixMilli(), to.UnixMilli()}, func(rows *sql.Rows) error {
		var c ReasonCount
		if err := rows.Scan(&c.Reason, &c.N); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deny reasons: %w", err)
	}
	return out, nil
}

// ChecksPerSource counts the checks in [from, to) per appliance and
// source, busiest first. The window is counted in whole quarter hours,
// from the one holding from (a local midnight starts one).
func (db *DB) ChecksPerSource(ctx context.Context, from, to time.Time) ([]SourceCount, error) {
	var out []SourceCount
	err := db.dashQuery(ctx, dashSourcesSQL, []any{quarterStart(from), to.UnixMilli()}, func(rows *sql.Rows) error {
		var c SourceCount
		if err := rows.Scan(&c.Appliance, &c.Source, &c.Allow, &c.Deny); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checks per source: %w", err)
	}
	return out, nil
}

// BusiestPlaces counts the checks in [from, to) per place (an entrance
// named for a source on the inputs page, else the source) and returns the
// limit busiest. The window is counted in whole quarter hours, from the
// one holding from.
func (db *DB) BusiestPlaces(ctx context.Context, from, to time.Time, limit int) ([]PlaceCount, error) {
	var out []PlaceCount
	err := db.dashQuery(ctx, dashPlacesSQL, []any{quarterStart(from), to.UnixMilli(), limit}, func(rows *sql.Rows) error {
		var c PlaceCount
		if err := rows.Scan(&c.Appliance, &c.Place, &c.N); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("busiest places: %w", err)
	}
	return out, nil
}

// purgeScanCounts deletes the dashboard's counts of the buckets that end
// before before, with the scans they counted: they hold no personal data,
// but nothing shows them after the day, and a district's sources would
// otherwise add some thousands of rows a day for ever.
func (db *DB) purgeScanCounts(ctx context.Context, before time.Time) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM scan_counts_time WHERE bucket_ms <= ? - 300000`, before.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM scan_counts_source WHERE bucket_ms <= ? - 900000`, before.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("purge scan counts: %w", err)
	}
	return nil
}

// quarterStart is the start of the source counts' bucket holding t.
func quarterStart(t time.Time) int64 {
	ms := t.UnixMilli()
	return ms - ms%sourceCountBucket.Milliseconds()
}

// dashQuery runs one dashboard query on the read pool and calls fn for
// each row.
func (db *DB) dashQuery(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
