package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"passgate/pass"
)

// Policy bounds. A value outside them is a typing mistake, not a policy.
// Validate is the one place that applies them; the web form and the CLI
// learn them from its field errors.
const (
	maxTestAge      = 30 * 24 * time.Hour
	maxDoses        = 255
	maxRepeatWindow = 24 * time.Hour
	maxClockSkew    = 24 * time.Hour
	// Scan, pass and audit retention share the ten-year bound. The
	// minimums of pass and audit retention are the schema's CHECKs
	// (migration 7): a pass record must outlive its pass by a day at
	// least, so a check of a just-expired pass can still be traced to its
	// issuance; the audit trail is kept a month at least, so a purge
	// cannot quietly remove last week's actions.
	minScanRetention  = 24 * time.Hour
	minPassRetention  = 24 * time.Hour
	minAuditRetention = 30 * 24 * time.Hour
	maxRetention      = 3650 * 24 * time.Hour
	// The backlog warning's bounds are the schema's CHECK: under a
	// minute it would warn at every push; over a week it never would.
	minBacklogWarn = time.Minute
	maxBacklogWarn = 7 * 24 * time.Hour
	// Lists count as stale after 5 s at the least (below that a pull
	// every 2 s would flap) and a day at the most (beyond, the warning
	// comes too late to matter).
	minStaleAfter = 5 * time.Second
	maxStaleAfter = 24 * time.Hour
)

// Policy fields as field errors name them. Each interface maps them to
// its own names: the web form to its inputs, the CLI to its flags.
const (
	PolicyColors         = "colors"
	PolicyMaxTestAge     = "max_test_age"
	PolicyMinDoses       = "min_doses"
	PolicyRepeatWindow   = "repeat_window"
	PolicyClockSkew      = "clock_skew"
	PolicyScanRetention  = "scan_retention"
	PolicyPassRetention  = "pass_retention"
	PolicyAuditRetention = "audit_retention"
	PolicyBacklogWarn    = "backlog_warn"
	PolicyTimeZone       = "time_zone"
	PolicyStaleAfter     = "stale_after"
)

// maxTimeZone bounds a zone name, as the schema's CHECK does.
const maxTimeZone = 64

// Validate returns a field error for every field of p outside the policy
// bounds, nil for a policy the store accepts. Its codes are message keys
// of the web catalogue with the bounds as arguments, so every interface
// says the same thing in its own language. A zero retention is valid: it
// means the default (ChangePolicy) or, on the web form, the period in force.
func (p *Policy) Validate() FieldErrors {
	var errs FieldErrors
	add := func(field, code string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Code: code, Args: args})
	}
	switch {
	case slices.ContainsFunc(p.Colors, func(c pass.Color) bool { return !validColor(c) }):
		add(PolicyColors, "admin.policy.err.color")
	case len(p.Colors) == 0:
		add(PolicyColors, "admin.policy.err.colors")
	}
	if p.MaxTestAge < 0 || p.MaxTestAge > maxTestAge {
		add(PolicyMaxTestAge, "admin.policy.err.test_hours", int(maxTestAge/time.Hour))
	}
	if p.MinDoses < 0 || p.MinDoses > maxDoses {
		add(PolicyMinDoses, "admin.policy.err.doses", maxDoses)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
		max   time.Duration
	}{{PolicyRepeatWindow, p.RepeatWindow, maxRepeatWindow}, {PolicyClockSkew, p.ClockSkew, maxClockSkew}} {
		if d.v < 0 || d.v > d.max {
			add(d.field, "admin.policy.err.minutes", int(d.max/time.Minute))
		}
	}
	const day = 24 * time.Hour
	if outside(p.ScanRetention, minScanRetention, maxRetention) {
		add(PolicyScanRetention, "admin.policy.err.days", int(maxRetention/day))
	}
	for _, d := range []struct {
		field  string
		v, min time.Duration
	}{{PolicyPassRetention, p.PassRetention, minPassRetention}, {PolicyAuditRetention, p.AuditRetention, minAuditRetention}} {
		if outside(d.v, d.min, maxRetention) {
			add(d.field, "admin.policy.err.days_range", int(d.min/day), int(maxRetention/day))
		}
	}
	if outside(p.BacklogWarn, minBacklogWarn, maxBacklogWarn) {
		add(PolicyBacklogWarn, "admin.policy.err.backlog_warn", int(minBacklogWarn/time.Minute), int(maxBacklogWarn/time.Minute))
	}
	if p.TimeZone != "" {
		if _, err := LoadZone(p.TimeZone); err != nil {
			add(PolicyTimeZone, "admin.policy.err.time_zone")
		}
	}
	if outside(p.StaleAfter, minStaleAfter, maxStaleAfter) {
		add(PolicyStaleAfter, "admin.policy.err.stale_after", int(minStaleAfter/time.Second), int(maxStaleAfter/time.Second))
	}
	return errs
}

// zones caches the zones loaded: LoadLocation reads and parses the zone
// database on every call, and pages ask for the district's zone on every
// render. Only names that loaded are kept, so the cache holds no more
// entries than the zone database has.
var zones sync.Map // string → *time.Location

// LoadZone loads an IANA zone name. Unlike time.LoadLocation it refuses
// "" and "Local" (both mean the server's own zone, which is what a
// district setting must not depend on) and over-long names.
func LoadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == "Local" || len(name) > maxTimeZone {
		return nil, fmt.Errorf("load time zone: %w: %q", ErrInvalid, name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("load time zone: %w: %q", ErrInvalid, name)
	}
	zones.Store(name, l)
	return l, nil
}

// Location is the district's time zone: every date typed means midnight
// in it, every time shown is shown in it. A policy read back from the
// store always names a valid zone; an unset or unloadable one (a policy
// built by hand) is DefaultTimeZone, or UTC should even that be missing
// from the zone database.
func (p *Policy) Location() *time.Location {
	if p != nil {
		if l, err := LoadZone(p.TimeZone); err == nil {
			return l
		}
	}
	if l, err := LoadZone(DefaultTimeZone); err == nil {
		return l
	}
	return time.UTC
}

// Location is the district's time zone as the policy sets it (see
// Policy.Location).
func (db *DB) Location(ctx context.Context) (*time.Location, error) {
	p, err := db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	return p.Location(), nil
}

// outside reports whether a retention period is set (not zero) and
// outside [lo, hi].
func outside(v, lo, hi time.Duration) bool {
	return v != 0 && (v < lo || v > hi)
}

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

// ChangePolicy replaces the check policy (refused with Validate's field
// errors, which match ErrInvalid, when out of bounds), sets p.UpdatedAt
// and p.UpdatedBy, and appends a policy_changed audit record with the
// old and new values in the same transaction, so the change and its
// record commit together. A change to identical values is saved (UpdatedAt moves) but
// not audited: nothing changed.
func (db *DB) ChangePolicy(ctx context.Context, p *Policy, actor Actor) error {
	if p == nil {
		return fmt.Errorf("change policy: %w: nil policy", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		old, err := findPolicy(ctx, tx)
		if err != nil {
			return err
		}
		if err := setPolicy(ctx, tx, p, actor, now); err != nil {
			return err
		}
		o, n := policyAudit(old), policyAudit(p)
		if o == n {
			return nil
		}
		return appendAudit(ctx, tx, &AuditRecord{
			At: now, Actor: actor, Action: AuditPolicyChanged, Subject: "policy",
			Detail: AuditDetail(map[string]policyValues{"old": o, "new": n}),
		}, now)
	})
	if err != nil {
		return fmt.Errorf("change policy: %w", err)
	}
	return nil
}

// policyValues is a policy as recorded in the audit trail: comparable,
// and readable in an export.
type policyValues struct {
	Colors       string `json:"colors"`
	MaxTestAge   string `json:"max_test_age"`
	MinDoses     int    `json:"min_doses"`
	AcceptPaper  bool   `json:"accept_paper"`
	RepeatWindow string `json:"repeat_window"`
	ClockSkew    string `json:"clock_skew"`
	// How long data is kept is policy too: shortening it deletes
	// records, so who changed it must be on record.
	ScanRetention  string `json:"scan_retention"`
	PassRetention  string `json:"pass_retention"`
	AuditRetention string `json:"audit_retention"`
	// Raising it silences the warning of a stuck uplink.
	BacklogWarn string `json:"backlog_warn"`
	// The zone decides which records a date range selects.
	TimeZone   string `json:"time_zone"`
	StaleAfter string `json:"stale_after"`
}

func policyAudit(p *Policy) policyValues {
	colors := make([]string, len(p.Colors))
	for i, c := range p.Colors {
		colors[i] = c.String()
	}
	return policyValues{
		Colors: strings.Join(colors, ","), MaxTestAge: p.MaxTestAge.String(), MinDoses: p.MinDoses,
		AcceptPaper: p.AcceptPaper, RepeatWindow: p.RepeatWindow.String(), ClockSkew: p.ClockSkew.String(),
		ScanRetention: p.ScanRetention.String(), PassRetention: p.PassRetention.String(),
		AuditRetention: p.AuditRetention.String(), BacklogWarn: p.BacklogWarn.String(), TimeZone: p.TimeZone,
		StaleAfter: p.StaleAfter.String(),
	}
}

func setPolicy(ctx context.Context, tx *sql.Tx, p *Policy, actor Actor, now time.Time) error {
	if actor == "" {
		return fmt.Errorf("%w: no actor", ErrInvalid)
	}
	if errs := p.Validate(); errs != nil {
		return errs
	}
	mask, err := colorMask(p.Colors)
	if err != nil {
		return err
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
	if p.BacklogWarn == 0 {
		p.BacklogWarn = DefaultBacklogWarn
	}
	if p.TimeZone == "" {
		p.TimeZone = DefaultTimeZone
	}
	if p.StaleAfter == 0 {
		p.StaleAfter = DefaultStaleAfter
	}
	// Kept to the millisecond, like the other durations: what is handed
	// back equals what is read back.
	p.ScanRetention = p.ScanRetention.Truncate(time.Millisecond)
	p.PassRetention = p.PassRetention.Truncate(time.Millisecond)
	p.AuditRetention = p.AuditRetention.Truncate(time.Millisecond)
	p.BacklogWarn = p.BacklogWarn.Truncate(time.Millisecond)
	p.StaleAfter = p.StaleAfter.Truncate(time.Millisecond)
	_, err = tx.ExecContext(ctx, `
		INSERT INTO policy (id, colors, max_test_age_ms, min_doses, accept_paper,
			repeat_window_ms, clock_skew_ms, scan_retention_ms, pass_retention_ms,
			audit_retention_ms, backlog_warn_ms, time_zone, stale_after_ms, updated_ms, updated_by)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			colors = excluded.colors, max_test_age_ms = excluded.max_test_age_ms,
			min_doses = excluded.min_doses, accept_paper = excluded.accept_paper,
			repeat_window_ms = excluded.repeat_window_ms, clock_skew_ms = excluded.clock_skew_ms,
			scan_retention_ms = excluded.scan_retention_ms, pass_retention_ms = excluded.pass_retention_ms,
			audit_retention_ms = excluded.audit_retention_ms, backlog_warn_ms = excluded.backlog_warn_ms,
			time_zone = excluded.time_zone, stale_after_ms = excluded.stale_after_ms,
			updated_ms = excluded.updated_ms, updated_by = excluded.updated_by`,
		mask, p.MaxTestAge.Milliseconds(), p.MinDoses, p.AcceptPaper,
		p.RepeatWindow.Milliseconds(), p.ClockSkew.Milliseconds(), p.ScanRetention.Milliseconds(),
		p.PassRetention.Milliseconds(), p.AuditRetention.Milliseconds(), p.BacklogWarn.Milliseconds(), p.TimeZone, p.StaleAfter.Milliseconds(), now.UnixMilli(), actor)
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
	var mask, testAge, repeat, skew, retention, passRet, auditRet, backlogWarn, stale, updated int64
	err := tx.QueryRowContext(ctx, `
		SELECT colors, max_test_age_ms, min_doses, accept_paper, repeat_window_ms,
			clock_skew_ms, scan_retention_ms, pass_retention_ms, audit_retention_ms,
			backlog_warn_ms, time_zone, stale_after_ms, updated_ms, updated_by
		FROM policy WHERE id = 1`).
		Scan(&mask, &testAge, &p.MinDoses, &p.AcceptPaper, &repeat, &skew, &retention,
			&passRet, &auditRet, &backlogWarn, &p.TimeZone, &stale, &updated, &p.UpdatedBy)
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
	p.BacklogWarn = time.Duration(backlogWarn) * time.Millisecond
	p.StaleAfter = time.Duration(stale) * time.Millisecond
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
