package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"passgate/pass"
)

// Policy bounds. A value outside them is a typing mistake, not a policy.
const (
	maxTestAge      = 30 * 24 * time.Hour
	maxRepeatWindow = 24 * time.Hour
	// maxScanRetention bounds how long scans may be kept: ten years.
	maxScanRetention = 3650 * 24 * time.Hour
	maxClockSkew     = 24 * time.Hour
	// Pass and audit retention share the ten-year bound. Their minimums
	// are the schema's CHECKs (migration 7): a pass record must outlive
	// its pass by a day at least, so a check of a just-expired pass can
	// still be traced to its issuance; the audit trail is kept a month at
	// least, so a purge cannot quietly remove last week's actions.
	minPassRetention  = 24 * time.Hour
	minAuditRetention = 30 * 24 * time.Hour
	maxRetention      = 3650 * 24 * time.Hour
)

// Policy returns the check policy; ErrNotInitialized before Setup.
func (db *DB) Policy(ctx context.Context) (*Policy, error) {
	var p *Policy
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		p, err = findPolicy(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find policy: %w", err)
	}
	return p, nil
}

// SetPolicy replaces the check policy (validated: known colours, at least
// one; durations not negative and within bounds; doses 0 to 255) and sets
// p.UpdatedAt and p.UpdatedBy. Durations are kept to the millisecond.
func (db *DB) SetPolicy(ctx context.Context, p *Policy, actor string) error {
	if p == nil {
		return fmt.Errorf("set policy: %w: nil policy", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return setPolicy(ctx, tx, p, actor, now)
	})
	if err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	return nil
}

func setPolicy(ctx context.Context, tx *sql.Tx, p *Policy, actor string, now time.Time) error {
	mask, err := colorMask(p.Colors)
	if err != nil {
		return err
	}
	switch {
	case actor == "":
		return fmt.Errorf("%w: no actor", ErrInvalid)
	case p.MaxTestAge < 0 || p.MaxTestAge > maxTestAge:
		return fmt.Errorf("%w: test age %v (0 to %v)", ErrInvalid, p.MaxTestAge, maxTestAge)
	case p.MinDoses < 0 || p.MinDoses > 255:
		return fmt.Errorf("%w: minimum doses %d", ErrInvalid, p.MinDoses)
	case p.RepeatWindow < 0 || p.RepeatWindow > maxRepeatWindow:
		return fmt.Errorf("%w: repeat window %v (0 to %v)", ErrInvalid, p.RepeatWindow, maxRepeatWindow)
	case p.ClockSkew < 0 || p.ClockSkew > maxClockSkew:
		return fmt.Errorf("%w: clock skew %v (0 to %v)", ErrInvalid, p.ClockSkew, maxClockSkew)
	case p.ScanRetention != 0 && (p.ScanRetention < 24*time.Hour || p.ScanRetention > maxScanRetention):
		return fmt.Errorf("%w: scan retention %v (1 day to %v)", ErrInvalid, p.ScanRetention, maxScanRetention)
	case p.PassRetention != 0 && (p.PassRetention < minPassRetention || p.PassRetention > maxRetention):
		return fmt.Errorf("%w: pass retention %v (1 day to 3650 days after the pass expires)", ErrInvalid, p.PassRetention)
	case p.AuditRetention != 0 && (p.AuditRetention < minAuditRetention || p.AuditRetention > maxRetention):
		return fmt.Errorf("%w: audit retention %v (30 days to 3650 days)", ErrInvalid, p.AuditRetention)
	}
	if p.ScanRetention == 0 {
		p.ScanRetention = DefaultScanRetention
	}
	if p.PassRetention == 0 {
		p.PassRetention = DefaultPassRetention
	}
	if p.AuditRetention == 0 {
		p.AuditRetention = DefaultAuditRetention
	}
	// Kept to the millisecond, like the other durations: what is handed
	// back equals what is read back.
	p.ScanRetention = p.ScanRetention.Truncate(time.Millisecond)
	p.PassRetention = p.PassRetention.Truncate(time.Millisecond)
	p.AuditRetention = p.AuditRetention.Truncate(time.Millisecond)
	_, err = tx.ExecContext(ctx, `
		INSERT INTO policy (id, colors, max_test_age_ms, min_doses, accept_paper,
			repeat_window_ms, clock_skew_ms, scan_retention_ms, pass_retention_ms,
			audit_retention_ms, updated_ms, updated_by)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			colors = excluded.colors, max_test_age_ms = excluded.max_test_age_ms,
			min_doses = excluded.min_doses, accept_paper = excluded.accept_paper,
			repeat_window_ms = excluded.repeat_window_ms, clock_skew_ms = excluded.clock_skew_ms,
			scan_retention_ms = excluded.scan_retention_ms, pass_retention_ms = excluded.pass_retention_ms,
			audit_retention_ms = excluded.audit_retention_ms,
			updated_ms = excluded.updated_ms, updated_by = excluded.updated_by`,
		mask, p.MaxTestAge.Milliseconds(), p.MinDoses, p.AcceptPaper,
		p.RepeatWindow.Milliseconds(), p.ClockSkew.Milliseconds(), p.ScanRetention.Milliseconds(),
		p.PassRetention.Milliseconds(), p.AuditRetention.Milliseconds(), now.UnixMilli(), actor)
	if err != nil {
		return mapErr(err)
	}
	p.Colors = maskColors(mask)
	p.MaxTestAge = p.MaxTestAge.Truncate(time.Millisecond)
	p.RepeatWindow = p.RepeatWindow.Truncate(time.Millisecond)
	p.ClockSkew = p.ClockSkew.Truncate(time.Millisecond)
	p.UpdatedAt, p.UpdatedBy = now, actor
	return nil
}

func findPolicy(ctx context.Context, tx *sql.Tx) (*Policy, error) {
	var p Policy
	var mask, testAge, repeat, skew, retention, passRet, auditRet, updated int64
	err := tx.QueryRowContext(ctx, `
		SELECT colors, max_test_age_ms, min_doses, accept_paper, repeat_window_ms,
			clock_skew_ms, scan_retention_ms, pass_retention_ms, audit_retention_ms,
			updated_ms, updated_by
		FROM policy WHERE id = 1`).
		Scan(&mask, &testAge, &p.MinDoses, &p.AcceptPaper, &repeat, &skew, &retention,
			&passRet, &auditRet, &updated, &p.UpdatedBy)
	if err == sql.ErrNoRows {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	p.Colors = maskColors(mask)
	p.MaxTestAge = time.Duration(testAge) * time.Millisecond
	p.RepeatWindow = time.Duration(repeat) * time.Millisecond
	p.ClockSkew = time.Duration(skew) * time.Millisecond
	p.ScanRetention = time.Duration(retention) * time.Millisecond
	p.PassRetention = time.Duration(passRet) * time.Millisecond
	p.AuditRetention = time.Duration(auditRet) * time.Millisecond
	p.UpdatedAt = time.UnixMilli(updated)
	return &p, nil
}

// colorMask packs colours as bit c for colour c: one small integer that
// a CHECK constraint can bound.
func colorMask(colors []pass.Color) (int64, error) {
	var mask int64
	for _, c := range colors {
		if !validColor(c) {
			return 0, fmt.Errorf("%w: colour %d", ErrInvalid, uint8(c))
		}
		mask |= 1 << c
	}
	if mask == 0 {
		return 0, fmt.Errorf("%w: policy allows no colour", ErrInvalid)
	}
	return mask, nil
}

// maskColors unpacks colorMask, in colour order.
func maskColors(mask int64) []pass.Color {
	var colors []pass.Color
	for c := pass.Green; c <= pass.Red; c++ {
		if mask&(1<<c) != 0 {
			colors = append(colors, c)
		}
	}
	return colors
}
