package web

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// handlePolicy shows the check policy in force.
func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	pol, err := s.db.Policy(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	f := policyForm(pol)
	if r.URL.Query().Get("saved") == "1" {
		f.Notice = i18n.FromRequest(r).T("admin.policy.saved")
	}
	s.render(w, r, http.StatusOK, view.AdminPolicyPage(s.adminPage(r, "admin.policy"), f))
}

// policyForm fills the form from a stored policy.
func policyForm(pol *store.Policy) view.PolicyForm {
	f := view.PolicyForm{
		Colors:             map[string]bool{},
		MinDoses:           strconv.Itoa(pol.MinDoses),
		AcceptPaper:        pol.AcceptPaper,
		RepeatMinutes:      minutes(pol.RepeatWindow),
		SkewMinutes:        minutes(pol.ClockSkew),
		RetentionDays:      strconv.Itoa(int(pol.ScanRetention / (24 * time.Hour))),
		PassRetentionDays:  strconv.Itoa(int(pol.PassRetention / (24 * time.Hour))),
		AuditRetentionDays: strconv.Itoa(int(pol.AuditRetention / (24 * time.Hour))),
		BacklogWarnMinutes: minutes(pol.BacklogWarn),
		TimeZone:           pol.TimeZone,
		StaleSeconds:       strconv.Itoa(int(pol.StaleAfter / time.Second)),
		UpdatedAt:          pol.UpdatedAt.In(pol.Location()),
		UpdatedBy:          string(pol.UpdatedBy),
	}
	for _, c := range pol.Colors {
		f.Colors[c.String()] = true
	}
	switch pol.MaxTestAge {
	case 0:
		f.TestAge = "none"
	case 48 * time.Hour:
		f.TestAge = "48"
	case 72 * time.Hour:
		f.TestAge = "72"
	default:
		f.TestAge = "custom"
		// A policy set elsewhere may hold a part hour; round up so the
		// form never shows a stricter policy than the one in force.
		f.TestAgeHours = strconv.FormatInt(int64((pol.MaxTestAge+time.Hour-1)/time.Hour), 10)
	}
	return f
}

// minutes shows a duration in whole minutes, rounded up for the same
// reason as the test age.
func minutes(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Minute-1)/time.Minute), 10)
}

// handleSavePolicy validates the form, stores the policy and reloads the
// checker so that the next check at any gate follows it.
func (s *Server) handleSavePolicy(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	pol, f := parsePolicy(r, t)
	if len(f.Errors) > 0 {
		if cur, err := s.db.Policy(r.Context()); err == nil {
			f.UpdatedAt, f.UpdatedBy = cur.UpdatedAt.In(cur.Location()), string(cur.UpdatedBy)
		}
		f.Error = t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminPolicyPage(s.adminPage(r, "admin.policy"), f))
		return
	}
	// A form without a retention field, a backlog warning or a zone keeps
	// the value in force.
	if pol.ScanRetention == 0 || pol.PassRetention == 0 || pol.AuditRetention == 0 || pol.BacklogWarn == 0 || pol.TimeZone == "" {
		cur, err := s.db.Policy(r.Context())
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		for _, k := range []struct {
			dst *time.Duration
			cur time.Duration
		}{
			{&pol.ScanRetention, cur.ScanRetention},
			{&pol.PassRetention, cur.PassRetention},
			{&pol.AuditRetention, cur.AuditRetention},
			{&pol.BacklogWarn, cur.BacklogWarn},
		} {
			if *k.dst == 0 {
				*k.dst = k.cur
			}
		}
		if pol.TimeZone == "" {
			pol.TimeZone = cur.TimeZone
		}
	}
	// ChangePolicy records old → new in the audit trail in the same
	// transaction as the change.
	if err := s.db.ChangePolicy(r.Context(), pol, actorOf(r)); err != nil {
		s.internalError(w, r, err) // the form's bounds are the store's: invalid here is a bug
		return
	}
	if err := s.checker.Refresh(r.Context()); err != nil {
		// Saved, but this process still checks with the old policy until
		// its periodic refresh succeeds: worth an error in the log.
		s.log.Error("reload policy after save", "err", err)
	}
	s.log.Info("policy changed", "by", actorOf(r))
	http.Redirect(w, r, "/admin/policy?saved=1", http.StatusSeeOther)
}

// policyInputs names the form input of each policy field, where the
// form shows store.Policy.Validate's message.
var policyInputs = map[string]string{
	store.PolicyColors:         "colors",
	store.PolicyMaxTestAge:     "test_age_hours",
	store.PolicyMinDoses:       "min_doses",
	store.PolicyRepeatWindow:   "repeat_minutes",
	store.PolicyClockSkew:      "skew_minutes",
	store.PolicyScanRetention:  "retention_days",
	store.PolicyPassRetention:  "pass_retention_days",
	store.PolicyAuditRetention: "audit_retention_days",
	store.PolicyBacklogWarn:    "backlog_warn_minutes",
	store.PolicyTimeZone:       "time_zone",
	store.PolicyStaleAfter:     "stale_seconds",
}

// parsePolicy reads the policy form. It returns the form as typed, with a
// message for every bad field, and the policy when there is none. The
// bounds and their messages are store.Policy.Validate's: what is typed
// but not a number is read as a value no bound admits, so it gets the
// same message as a number out of bounds.
func parsePolicy(r *http.Request, t i18n.Printer) (*store.Policy, view.PolicyForm) {
	form := r.PostForm
	f := view.PolicyForm{
		Colors:             map[string]bool{},
		TestAge:            form.Get("test_age"),
		TestAgeHours:       strings.TrimSpace(form.Get("test_age_hours")),
		MinDoses:           strings.TrimSpace(form.Get("min_doses")),
		AcceptPaper:        form.Get("accept_paper") != "",
		RepeatMinutes:      strings.TrimSpace(form.Get("repeat_minutes")),
		SkewMinutes:        strings.TrimSpace(form.Get("skew_minutes")),
		RetentionDays:      strings.TrimSpace(form.Get("retention_days")),
		PassRetentionDays:  strings.TrimSpace(form.Get("pass_retention_days")),
		AuditRetentionDays: strings.TrimSpace(form.Get("audit_retention_days")),
		BacklogWarnMinutes: strings.TrimSpace(form.Get("backlog_warn_minutes")),
		TimeZone:           strings.TrimSpace(form.Get("time_zone")),
		StaleSeconds:       strings.TrimSpace(form.Get("stale_seconds")),
		Errors:             view.FieldErrors{},
	}
	pol := &store.Policy{
		AcceptPaper:    f.AcceptPaper,
		MinDoses:       formInt(f.MinDoses),
		RepeatWindow:   formDuration(f.RepeatMinutes, time.Minute),
		ClockSkew:      formDuration(f.SkewMinutes, time.Minute),
		ScanRetention:  formRetention(f.RetentionDays),
		PassRetention:  formRetention(f.PassRetentionDays),
		AuditRetention: formRetention(f.AuditRetentionDays),
		BacklogWarn:    formKept(f.BacklogWarnMinutes, time.Minute),
		TimeZone:       f.TimeZone,
		StaleAfter:     formKept(f.StaleSeconds, time.Second),
	}
	for _, name := range form["colors"] {
		c, err := pass.ParseColor(name)
		if err != nil {
			pol.Colors = append(pol.Colors, 0) // the zero colour is no colour: refused
			continue
		}
		if !f.Colors[c.String()] {
			f.Colors[c.String()] = true
			pol.Colors = append(pol.Colors, c)
		}
	}
	switch f.TestAge {
	case "none":
		pol.MaxTestAge = 0
	case "48":
		pol.MaxTestAge = 48 * time.Hour
	case "72":
		pol.MaxTestAge = 72 * time.Hour
	case "custom":
		// Zero hours is the "none" choice, not a custom age.
		if pol.MaxTestAge = formDuration(f.TestAgeHours, time.Hour); pol.MaxTestAge == 0 {
			pol.MaxTestAge = -1
		}
	default:
		f.Errors["test_age"] = t.T("admin.policy.err.test_age")
	}
	for _, fe := range pol.Validate() {
		f.Errors[policyInputs[fe.Field]] = t.T(fe.Code, fe.Args...)
	}
	return pol, f
}

// formInt reads a decimal integer; -1, which no policy number admits,
// when s is none.
func formInt(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// formDuration reads a whole number of units; -1 when s is not a whole
// number of them that a duration can hold.
func formDuration(s string, unit time.Duration) time.Duration {
	n := formInt(s)
	if n < 0 || time.Duration(n) > math.MaxInt64/unit {
		return -1
	}
	return time.Duration(n) * unit
}

// formRetention reads a retention period in days. Left empty it is zero,
// the period in force; typed as 0 it is refused, not read as "keep".
func formRetention(s string) time.Duration { return formKept(s, 24*time.Hour) }

// formKept reads a whole number of units of a field that keeps the value
// in force when left empty (zero); typed as 0 it is refused.
func formKept(s string, unit time.Duration) time.Duration {
	if s == "" {
		return 0
	}
	if d := formDuration(s, unit); d != 0 {
		return d
	}
	return -1
}
