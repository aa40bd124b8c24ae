package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// Each policy bound, just inside and just outside: inside is valid, outside
// names exactly its field with the message code and bounds the pages and
// the CLI show, and the store refuses what Validate refuses.
func TestPolicy_Validate(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		name  string
		mod   func(*store.Policy)
		field string // "" when valid
		code  string
		args  []any
	}{
		{"one colour", func(p *store.Policy) { p.Colors = []pass.Color{pass.Red} }, "", "", nil},
		{"no colour", func(p *store.Policy) { p.Colors = nil }, store.PolicyColors, "admin.policy.err.colors", nil},
		{"unknown colour", func(p *store.Policy) { p.Colors = []pass.Color{pass.Green, pass.Red + 1} }, store.PolicyColors, "admin.policy.err.color", nil},
		{"test age 0", func(p *store.Policy) { p.MaxTestAge = 0 }, "", "", nil},
		{"test age below 0", func(p *store.Policy) { p.MaxTestAge = -time.Nanosecond }, store.PolicyMaxTestAge, "admin.policy.err.test_hours", []any{720}},
		{"test age 720h", func(p *store.Policy) { p.MaxTestAge = 720 * time.Hour }, "", "", nil},
		{"test age over 720h", func(p *store.Policy) { p.MaxTestAge = 720*time.Hour + time.Nanosecond }, store.PolicyMaxTestAge, "admin.policy.err.test_hours", []any{720}},
		{"doses 0", func(p *store.Policy) { p.MinDoses = 0 }, "", "", nil},
		{"doses -1", func(p *store.Policy) { p.MinDoses = -1 }, store.PolicyMinDoses, "admin.policy.err.doses", []any{255}},
		{"doses 255", func(p *store.Policy) { p.MinDoses = 255 }, "", "", nil},
		{"doses 256", func(p *store.Policy) { p.MinDoses = 256 }, store.PolicyMinDoses, "admin.policy.err.doses", []any{255}},
		{"repeat 0", func(p *store.Policy) { p.RepeatWindow = 0 }, "", "", nil},
		{"repeat below 0", func(p *store.Policy) { p.RepeatWindow = -time.Nanosecond }, store.PolicyRepeatWindow, "admin.policy.err.minutes", []any{1440}},
		{"repeat 24h", func(p *store.Policy) { p.RepeatWindow = day }, "", "", nil},
		{"repeat over 24h", func(p *store.Policy) { p.RepeatWindow = day + time.Nanosecond }, store.PolicyRepeatWindow, "admin.policy.err.minutes", []any{1440}},
		{"skew 0", func(p *store.Policy) { p.ClockSkew = 0 }, "", "", nil},
		{"skew below 0", func(p *store.Policy) { p.ClockSkew = -time.Nanosecond }, store.PolicyClockSkew, "admin.policy.err.minutes", []any{1440}},
		{"skew 24h", func(p *store.Policy) { p.ClockSkew = day }, "", "", nil},
		{"skew over 24h", func(p *store.Policy) { p.ClockSkew = day + time.Nanosecond }, store.PolicyClockSkew, "admin.policy.err.minutes", []any{1440}},
		{"stale after 0 (default)", func(p *store.Policy) { p.StaleAfter = 0 }, "", "", nil},
		{"stale after 5s", func(p *store.Policy) { p.StaleAfter = 5 * time.Second }, "", "", nil},
		{"stale after under 5s", func(p *store.Policy) { p.StaleAfter = 5*time.Second - time.Millisecond }, store.PolicyStaleAfter, "admin.policy.err.stale_after", []any{5, 86400}},
		{"stale after negative", func(p *store.Policy) { p.StaleAfter = -time.Second }, store.PolicyStaleAfter, "admin.policy.err.stale_after", []any{5, 86400}},
		{"stale after 24h", func(p *store.Policy) { p.StaleAfter = day }, "", "", nil},
		{"stale after over 24h", func(p *store.Policy) { p.StaleAfter = day + time.Millisecond }, store.PolicyStaleAfter, "admin.policy.err.stale_after", []any{5, 86400}},
		{"scan retention default", func(p *store.Policy) { p.ScanRetention = 0 }, "", "", nil},
		{"scan retention 1 day", func(p *store.Policy) { p.ScanRetention = day }, "", "", nil},
		{"scan retention under 1 day", func(p *store.Policy) { p.ScanRetention = day - time.Nanosecond }, store.PolicyScanRetention, "admin.policy.err.days", []any{3650}},
		{"scan retention negative", func(p *store.Policy) { p.ScanRetention = -day }, store.PolicyScanRetention, "admin.policy.err.days", []any{3650}},
		{"scan retention 3650 days", func(p *store.Policy) { p.ScanRetention = 3650 * day }, "", "", nil},
		{"scan retention over 3650 days", func(p *store.Policy) { p.ScanRetention = 3650*day + time.Nanosecond }, store.PolicyScanRetention, "admin.policy.err.days", []any{3650}},
		{"pass retention default", func(p *store.Policy) { p.PassRetention = 0 }, "", "", nil},
		{"pass retention 1 day", func(p *store.Policy) { p.PassRetention = day }, "", "", nil},
		{"pass retention under 1 day", func(p *store.Policy) { p.PassRetention = day - time.Nanosecond }, store.PolicyPassRetention, "admin.policy.err.days_range", []any{1, 3650}},
		{"pass retention 3650 days", func(p *store.Policy) { p.PassRetention = 3650 * day }, "", "", nil},
		{"pass retention over 3650 days", func(p *store.Policy) { p.PassRetention = 3650*day + time.Nanosecond }, store.PolicyPassRetention, "admin.policy.err.days_range", []any{1, 3650}},
		{"audit retention default", func(p *store.Policy) { p.AuditRetention = 0 }, "", "", nil},
		{"audit retention 30 days", func(p *store.Policy) { p.AuditRetention = 30 * day }, "", "", nil},
		{"audit retention under 30 days", func(p *store.Policy) { p.AuditRetention = 30*day - time.Nanosecond }, store.PolicyAuditRetention, "admin.policy.err.days_range", []any{30, 3650}},
		{"audit retention 3650 days", func(p *store.Policy) { p.AuditRetention = 3650 * day }, "", "", nil},
		{"audit retention over 3650 days", func(p *store.Policy) { p.AuditRetention = 3650*day + time.Nanosecond }, store.PolicyAuditRetention, "admin.policy.err.days_range", []any{30, 3650}},
		{"backlog warning default", func(p *store.Policy) { p.BacklogWarn = 0 }, "", "", nil},
		{"backlog warning 1 minute", func(p *store.Policy) { p.BacklogWarn = time.Minute }, "", "", nil},
		{"backlog warning under 1 minute", func(p *store.Policy) { p.BacklogWarn = time.Minute - time.Nanosecond }, store.PolicyBacklogWarn, "admin.policy.err.backlog_warn", []any{1, 10080}},
		{"backlog warning negative", func(p *store.Policy) { p.BacklogWarn = -time.Minute }, store.PolicyBacklogWarn, "admin.policy.err.backlog_warn", []any{1, 10080}},
		{"backlog warning 7 days", func(p *store.Policy) { p.BacklogWarn = 7 * day }, "", "", nil},
		{"backlog warning over 7 days", func(p *store.Policy) { p.BacklogWarn = 7*day + time.Nanosecond }, store.PolicyBacklogWarn, "admin.policy.err.backlog_warn", []any{1, 10080}},
		{"time zone default", func(p *store.Policy) { p.TimeZone = "" }, "", "", nil},
		{"time zone UTC", func(p *store.Policy) { p.TimeZone = "UTC" }, "", "", nil},
		{"time zone Urumqi", func(p *store.Policy) { p.TimeZone = "Asia/Urumqi" }, "", "", nil},
		{"time zone unknown", func(p *store.Policy) { p.TimeZone = "Mars/Olympus" }, store.PolicyTimeZone, "admin.policy.err.time_zone", nil},
		{"time zone Local", func(p *store.Policy) { p.TimeZone = "Local" }, store.PolicyTimeZone, "admin.policy.err.time_zone", nil},
		{"time zone path", func(p *store.Policy) { p.TimeZone = "../../etc/passwd" }, store.PolicyTimeZone, "admin.policy.err.time_zone", nil},
		{"time zone absolute path", func(p *store.Policy) { p.TimeZone = "/etc/localtime" }, store.PolicyTimeZone, "admin.policy.err.time_zone", nil},
		{"time zone too long", func(p *store.Policy) { p.TimeZone = "Asia/" + strings.Repeat("x", 64) }, store.PolicyTimeZone, "admin.policy.err.time_zone", nil},
	}
	// One store for every case: each change is a whole policy, so no
	// case's outcome depends on the one before.
	db := MustOpenDB(t)
	MustSetup(t, db)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := store.DefaultPolicy()
			tc.mod(&p)
			errs := p.Validate()
			if tc.field == "" {
				if errs != nil {
					t.Fatalf("valid policy refused: %v", errs)
				}
			} else if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Code != tc.code || !slices.Equal(errs[0].Args, tc.args) {
				t.Fatalf("errors %v, want %s %s %v", errs, tc.field, tc.code, tc.args)
			}
			err := db.ChangePolicy(ctxb(), &p, "admin")
			var fes store.FieldErrors
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("store refused a valid policy: %v", err)
			case tc.field != "" && (!errors.Is(err, store.ErrInvalid) || !errors.As(err, &fes) || fes[0].Field != tc.field):
				t.Fatalf("store: err = %v, want the field error of %s", err, tc.field)
			}
		})
	}
}

// The district's zone is Asia/Shanghai until an admin sets another; a
// change is kept, read back through Location, and audited like every
// other field.
func TestDB_PolicyTimeZone(t *testing.T) {
	db := MustOpenDB(t)
	MustSetup(t, db)
	p, err := db.Policy(ctxb())
	if err != nil {
		t.Fatal(err)
	}
	if p.TimeZone != store.DefaultTimeZone || p.Location().String() != "Asia/Shanghai" {
		t.Fatalf("zone after setup %q (%v), want Asia/Shanghai", p.TimeZone, p.Location())
	}
	p.TimeZone = "Asia/Urumqi"
	if err := db.ChangePolicy(ctxb(), p, "admin"); err != nil {
		t.Fatal(err)
	}
	loc, err := db.Location(ctxb())
	if err != nil || loc.String() != "Asia/Urumqi" {
		t.Fatalf("zone after the change %v, %v", loc, err)
	}
	var detail string
	err = db.FindAudit(ctxb(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditPolicyChanged {
			detail = string(r.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, `"time_zone":"Asia/Shanghai"`) || !strings.Contains(detail, `"time_zone":"Asia/Urumqi"`) {
		t.Fatalf("policy change record %s does not show old and new zones", detail)
	}
	// A policy built by hand without a zone reads as the default.
	if l := (&store.Policy{}).Location(); l.String() != store.DefaultTimeZone {
		t.Fatalf("empty zone reads as %v", l)
	}
}
