package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Bounds of the policy form. They match the store's limits, expressed in
// the units the form asks for.
const (
	maxTestAgeHours = 30 * 24
	maxDoses        = 255
	maxPolicyMins   = 24 * 60
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

// maxRetentionDays bounds the retention periods an admin may set: ten
// years. minAuditRetentionDays is the store's floor for audit records: a
// shorter period would let a purge remove recent actions.
const (
	maxRetentionDays      = 3650
	minAuditRetentionDays = 30
)

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
		UpdatedAt:          pol.UpdatedAt.Local(),
		UpdatedBy:          pol.UpdatedBy,
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
	if !readAdminForm(w, r) {
		return
	}
	t := i18n.FromRequest(r)
	pol, f := parsePolicy(r, t)
	if len(f.Errors) > 0 {
		if cur, err := s.db.Policy(r.Context()); err == nil {
			f.UpdatedAt, f.UpdatedBy = cur.UpdatedAt.Local(), cur.UpdatedBy
		}
		f.Error = t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminPolicyPage(s.adminPage(r, "admin.policy"), f))
		return
	}
	// A form without a retention field keeps that retention in force.
	if pol.ScanRetention == 0 || pol.PassRetention == 0 || pol.AuditRetention == 0 {
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
		} {
			if *k.dst == 0 {
				*k.dst = k.cur
			}
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

// parsePolicy reads the policy form. It returns the form as typed, with a
// message for every bad field, and the policy when there is none.
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
		Errors:             view.FieldErrors{},
	}
	pol := &store.Policy{AcceptPaper: f.AcceptPaper}
	for _, name := range form["colors"] {
		c, err := pass.ParseColor(name)
		if err != nil {
			f.Errors["colors"] = t.T("admin.policy.err.color")
			continue
		}
		if !f.Colors[c.String()] {
			f.Colors[c.String()] = true
			pol.Colors = append(pol.Colors, c)
		}
	}
	if len(pol.Colors) == 0 && f.Errors["colors"] == "" {
		f.Errors["colors"] = t.T("admin.policy.err.colors")
	}
	switch f.TestAge {
	case "none":
		pol.MaxTestAge = 0
	case "48":
		pol.MaxTestAge = 48 * time.Hour
	case "72":
		pol.MaxTestAge = 72 * time.Hour
	case "custom":
		h, ok := wholeNumber(f.TestAgeHours, 1, maxTestAgeHours)
		if !ok {
			f.Errors["test_age_hours"] = t.T("admin.policy.err.test_hours", maxTestAgeHours)
		}
		pol.MaxTestAge = time.Duration(h) * time.Hour
	default:
		f.Errors["test_age"] = t.T("admin.policy.err.test_age")
	}
	if n, ok := wholeNumber(f.MinDoses, 0, maxDoses); ok {
		pol.MinDoses = n
	} else {
		f.Errors["min_doses"] = t.T("admin.policy.err.doses", maxDoses)
	}
	if n, ok := wholeNumber(f.RepeatMinutes, 0, maxPolicyMins); ok {
		pol.RepeatWindow = time.Duration(n) * time.Minute
	} else {
		f.Errors["repeat_minutes"] = t.T("admin.policy.err.minutes", maxPolicyMins)
	}
	if n, ok := wholeNumber(f.SkewMinutes, 0, maxPolicyMins); ok {
		pol.ClockSkew = time.Duration(n) * time.Minute
	} else {
		f.Errors["skew_minutes"] = t.T("admin.policy.err.minutes", maxPolicyMins)
	}
	if f.RetentionDays != "" {
		if n, ok := wholeNumber(f.RetentionDays, 1, maxRetentionDays); ok {
			pol.ScanRetention = time.Duration(n) * 24 * time.Hour
		} else {
			f.Errors["retention_days"] = t.T("admin.policy.err.days", maxRetentionDays)
		}
	}
	for _, d := range []struct {
		field, val string
		min        int
		dst        *time.Duration
	}{
		{"pass_retention_days", f.PassRetentionDays, 1, &pol.PassRetention},
		{"audit_retention_days", f.AuditRetentionDays, minAuditRetentionDays, &pol.AuditRetention},
	} {
		if d.val == "" {
			continue
		}
		if n, ok := wholeNumber(d.val, d.min, maxRetentionDays); ok {
			*d.dst = time.Duration(n) * 24 * time.Hour
		} else {
			f.Errors[d.field] = t.T("admin.policy.err.days_range", d.min, maxRetentionDays)
		}
	}
	return pol, f
}

// wholeNumber parses a decimal integer within [lo, hi].
func wholeNumber(s string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}
