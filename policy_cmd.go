package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
)

// cmdPolicy shows the check policy, or changes it with flags.
func cmdPolicy(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("policy", "[--colors green,...] [--max-test-age DURATION] [--min-doses N] [--repeat-window DURATION] [--scan-retention-days N] [--pass-retention-days N] [--audit-retention-days N] [--backlog-warn DURATION] [--time-zone ZONE] [--stale-after DURATION]")
	colors := fs.String("colors", "", "colours allowed through, comma separated")
	maxAge := fs.String("max-test-age", "", "maximum time since a negative test, e.g. 48h or 72h; 0 for no test required")
	minDoses := fs.String("min-doses", "", "minimum vaccine doses")
	repeat := fs.String("repeat-window", "", "flag a pass checked again within this time, e.g. 5m; 0 to turn off")
	paper := fs.String("accept-paper", "", "accept paper passes: true or false")
	skew := fs.String("clock-skew", "", "clock difference tolerated on pass and certificate times, e.g. 5m")
	retention := fs.String("scan-retention-days", "", "days scans are kept before they are purged (default 28)")
	passRetention := fs.String("pass-retention-days", "", "days a pass record is kept after the pass expires (default 90, 1 to 3650)")
	auditRetention := fs.String("audit-retention-days", "", "days audit records are kept (default 365, 30 to 3650)")
	zone := fs.String("time-zone", "", "the district's time zone, an IANA name (default Asia/Shanghai): dates typed to export and trace mean midnight there, and pages and files show its times")
	backlogWarn := fs.String("backlog-warn", "", "warn when a record has waited this long for the district hub, e.g. 15m (1m to 168h)")
	staleAfter := fs.String("stale-after", "", "warn at an enrolled appliance's gate when its lists are older than this, e.g. 2m (5s to 24h)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	p, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	changed := false
	if *colors != "" {
		p.Colors = nil
		for _, s := range strings.Split(*colors, ",") {
			c, err := pass.ParseColor(s)
			if err != nil {
				return e.usageError("policy", "%v", err)
			}
			p.Colors = append(p.Colors, c)
		}
		changed = true
	}
	for _, d := range []struct {
		flag, val string
		dst       *time.Duration
	}{{"max-test-age", *maxAge, &p.MaxTestAge}, {"repeat-window", *repeat, &p.RepeatWindow}, {"clock-skew", *skew, &p.ClockSkew},
		{"backlog-warn", *backlogWarn, &p.BacklogWarn}, {"stale-after", *staleAfter, &p.StaleAfter}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil {
			return e.usageError("policy", "--%s %q is not a duration such as 48h or 5m", d.flag, d.val)
		}
		*d.dst, changed = v, true
	}
	if *minDoses != "" {
		n, err := strconv.Atoi(*minDoses)
		if err != nil {
			n = -1 // no bound admits it: refused below with the bounds
		}
		p.MinDoses, changed = n, true
	}
	for _, d := range []struct {
		val string
		dst *time.Duration
	}{{*retention, &p.ScanRetention}, {*passRetention, &p.PassRetention}, {*auditRetention, &p.AuditRetention}} {
		if d.val == "" {
			continue
		}
		// Not a count of days, or 0 (which the store reads as "the
		// default"): no bound admits -1, so it is refused below.
		*d.dst, changed = -1, true
		if n, err := strconv.Atoi(d.val); err == nil && n > 0 && int64(n) <= math.MaxInt64/int64(24*time.Hour) {
			*d.dst = time.Duration(n) * 24 * time.Hour
		}
	}
	if *paper != "" {
		v, err := strconv.ParseBool(*paper)
		if err != nil {
			return e.usageError("policy", "--accept-paper %q is not true or false", *paper)
		}
		p.AcceptPaper, changed = v, true
	}
	if *zone != "" {
		p.TimeZone, changed = *zone, true
	}
	if changed {
		if errs := p.Validate(); errs != nil {
			en := i18n.Printer{Lang: i18n.EN}
			for _, fe := range errs {
				e.usageError("policy", "--%s: %s", policyFlags[fe.Field], en.T(fe.Code, fe.Args...))
			}
			return exitError
		}
		// Audited with old → new values in the same transaction.
		if err := db.ChangePolicy(ctx, p, cliActor()); err != nil {
			return e.fail(err)
		}
	}
	out, _ := json.MarshalIndent(policyJSON(p), "", "  ")
	fmt.Fprintln(e.stdout, string(out))
	return exitOK
}

// policyFlags names the flag of each policy field, for
// store.Policy.Validate's messages.
var policyFlags = map[string]string{
	store.PolicyColors:         "colors",
	store.PolicyMaxTestAge:     "max-test-age",
	store.PolicyMinDoses:       "min-doses",
	store.PolicyRepeatWindow:   "repeat-window",
	store.PolicyClockSkew:      "clock-skew",
	store.PolicyScanRetention:  "scan-retention-days",
	store.PolicyPassRetention:  "pass-retention-days",
	store.PolicyAuditRetention: "audit-retention-days",
	store.PolicyBacklogWarn:    "backlog-warn",
	store.PolicyTimeZone:       "time-zone",
	store.PolicyStaleAfter:     "stale-after",
}

func policyJSON(p *store.Policy) map[string]any {
	colors := make([]string, len(p.Colors))
	for i, c := range p.Colors {
		colors[i] = c.String()
	}
	return map[string]any{
		"colors":              colors,
		"max_test_age":        p.MaxTestAge.String(),
		"min_doses":           p.MinDoses,
		"accept_paper":        p.AcceptPaper,
		"repeat_window":       p.RepeatWindow.String(),
		"clock_skew":          p.ClockSkew.String(),
		"stale_after":         p.StaleAfter.String(),
		"scan_retention_days": int(p.ScanRetention / (24 * time.Hour)),
		// Whole days rounded down, like the scan retention: the CLI and
		// the web form only ever set whole days.
		"pass_retention_days":  int(p.PassRetention / (24 * time.Hour)),
		"audit_retention_days": int(p.AuditRetention / (24 * time.Hour)),
		"backlog_warn":         p.BacklogWarn.String(),
		"time_zone":            p.TimeZone,
		"updated_at":           p.UpdatedAt.In(p.Location()).Format(time.RFC3339),
	}
}
