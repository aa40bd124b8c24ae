package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"passgate/district"
	"passgate/export"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// maxTraceActForm bounds the action form: a ticked box is about 40
// bytes, so this holds every contact of a large result.
const maxTraceActForm = 1 << 20

// traceColors are the colours an officer may set from a trace, the
// default (yellow: to be tested) first.
var traceColors = []string{pass.Yellow.String(), pass.Red.String(), pass.Green.String()}

// grantOf returns the kept trace the URL names for this session, or
// answers 404: an expired, foreign or made-up token opens nothing.
func (s *Server) grantOf(w http.ResponseWriter, r *http.Request) *traceGrant {
	g := s.traces.get(r, r.PathValue("token"), s.db.Now())
	if g == nil {
		// Expired, or another session's, or made up: on record, since
		// only the last is unremarkable.
		s.auditTraceRefusal(r, "trace_token")
		s.fail(w, r, &Error{Code: ENotFound, Key: "admin.trace.expired"})
	}
	return g
}

// auditTraceRefusal records a request that named what its trace did not
// give: a token or a contact.
func (s *Server) auditTraceRefusal(r *http.Request, why ErrorCode) {
	if u := userFrom(r.Context()); u != nil {
		s.auditRefusal(r, u, why)
	}
}

// handleTraceShow shows a kept trace again (the way back from a person).
func (s *Server) handleTraceShow(w http.ResponseWriter, r *http.Request) {
	g := s.grantOf(w, r)
	if g == nil {
		return
	}
	s.renderTrace(w, r, http.StatusOK, g, g.actView(view.TraceResults{}))
}

// actView is the result page with the action form as posted in f.
func (g *traceGrant) actView(f view.TraceResults) view.TraceResults {
	m := g.view
	m.Token, m.Colors = g.token, traceColors
	m.Selected, m.Color, m.Reason, m.ActError, m.ActErrors = f.Selected, f.Color, f.Reason, f.ActError, f.ActErrors
	if m.Color == "" {
		m.Color = pass.Yellow.String()
	}
	return m
}

// traceContact reads a contact pseudonym from the grant: ok only for a
// contact the trace found who is registered in the district.
func (g *traceGrant) contact(hexSubject string) (pass.Subject, string) {
	var c pass.Subject
	b, err := hex.DecodeString(hexSubject)
	if err != nil || len(b) != len(c) {
		return c, "admin.trace.act.err.unknown"
	}
	copy(c[:], b)
	known, found := g.known[c]
	switch {
	case !found:
		return c, "admin.trace.act.err.unknown"
	case !known:
		return c, "admin.trace.act.err.not_here"
	}
	return c, ""
}

// handleTraceAct acts on the contacts ticked on a trace's page: set their
// status, download them, or trace one of them (second degree). A bad
// selection is answered 422 with the page as posted.
func (s *Server) handleTraceAct(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxTraceActForm) {
		return
	}
	g := s.grantOf(w, r)
	if g == nil {
		return
	}
	t := i18n.FromRequest(r)
	f := r.PostForm
	form := view.TraceResults{Selected: map[string]bool{}, Color: f.Get("color"), Reason: f.Get("reason"), ActErrors: view.FieldErrors{}}
	var picked []pass.Subject
	for _, v := range f["contact"] {
		form.Selected[v] = true
		c, bad := g.contact(v)
		if bad == "admin.trace.act.err.unknown" {
			// The page offers only the trace's contacts: another was
			// put in by hand.
			s.auditTraceRefusal(r, "trace_contact")
		}
		if bad != "" {
			form.ActErrors["contact"] = t.T(bad)
			continue
		}
		picked = append(picked, c)
	}
	if len(f["contact"]) == 0 {
		form.ActErrors["contact"] = t.T("admin.trace.act.err.empty")
	}
	action := f.Get("action")
	switch {
	case len(form.ActErrors) > 0:
	case action == "status":
		s.traceSetStatus(w, r, g, form, picked)
		return
	case action == "export":
		s.traceExportSelection(w, r, g, form, picked)
		return
	case action == "trace" && len(picked) != 1:
		form.ActErrors["contact"] = t.T("admin.trace.act.err.one")
	case action == "trace":
		s.traceSecondDegree(w, r, g, picked[0])
		return
	default:
		form.ActErrors["contact"] = t.T("admin.trace.act.err.action")
	}
	form.ActError = t.T("error.form_invalid")
	s.renderTrace(w, r, http.StatusUnprocessableEntity, g, g.actView(form))
}

// traceSetStatus sets the colour of every picked contact, each change on
// record naming the trace. The colour and reason are checked once for
// all, so a bad form changes nobody.
func (s *Server) traceSetStatus(w http.ResponseWriter, r *http.Request, g *traceGrant, form view.TraceResults, picked []pass.Subject) {
	t := i18n.FromRequest(r)
	color, _ := pass.ParseColor(form.Color) // unknown: 0, refused on the field
	if _, err := district.CheckStatusChange(color, form.Reason); err != nil {
		form.ActErrors = fieldErrs(t, err)
		form.ActError = t.T("error.form_invalid")
		s.renderTrace(w, r, http.StatusUnprocessableEntity, g, g.actView(form))
		return
	}
	for _, c := range picked {
		_, err := district.SetStatusAfterTrace(r.Context(), s.db, c, color, form.Reason, actorOf(r), g.seq)
		if errors.Is(err, store.ErrNotFound) {
			// Removed from the register since the trace: the others
			// before it are changed (and on record); say which is not.
			form.ActErrors["contact"] = t.T("admin.trace.act.err.not_here")
			form.ActError = t.T("error.form_invalid")
			s.renderTrace(w, r, http.StatusUnprocessableEntity, g, g.actView(form))
			return
		}
		if err != nil {
			s.internalError(w, r, err)
			return
		}
	}
	m := g.actView(view.TraceResults{})
	m.ActError = ""
	s.renderTraceNotice(w, r, g, m, t.T("admin.trace.act.done", len(picked), t.T("color."+color.String())))
}

// renderTraceNotice shows the result page with a notice above it.
func (s *Server) renderTraceNotice(w http.ResponseWriter, r *http.Request, g *traceGrant, m view.TraceResults, notice string) {
	m.Notice = notice
	s.renderTrace(w, r, http.StatusOK, g, m)
}

// traceExportSelection sends the picked contacts' part of the result as
// a file, on record as an export of that trace.
func (s *Server) traceExportSelection(w http.ResponseWriter, r *http.Request, g *traceGrant, form view.TraceResults, picked []pass.Subject) {
	t := i18n.FromRequest(r)
	req := g.req
	req.Format = export.Format(r.PostForm.Get("format"))
	if !validTraceFormat(req.Format) {
		form.ActErrors["format"] = t.T("admin.export.err.format")
		form.ActError = t.T("admin.export.err.format")
		s.renderTrace(w, r, http.StatusUnprocessableEntity, g, g.actView(form))
		return
	}
	keep := make(map[pass.Subject]bool, len(picked))
	subjects := make([]string, 0, len(picked))
	for _, c := range picked {
		keep[c] = true
		subjects = append(subjects, hex.EncodeToString(c[:]))
	}
	if err := s.db.Audit(r.Context(), &store.AuditRecord{
		Actor: actorOf(r), Action: store.AuditExport, Subject: hex.EncodeToString(req.Subject[:]),
		Detail: store.AuditDetail(map[string]any{
			"kind": "trace_selection", "trace": g.seq, "format": req.Format, "contacts": subjects,
		}),
	}); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.sendTrace(w, r, &req, g.res.Only(keep))
}

// validTraceFormat reports whether f is one of the download formats.
func validTraceFormat(f export.Format) bool {
	for _, k := range export.Formats {
		if f == k {
			return true
		}
	}
	return false
}

// traceSecondDegree traces a contact's own contacts over the same range
// and window, on record as a second-degree trace of the first.
func (s *Server) traceSecondDegree(w http.ResponseWriter, r *http.Request, g *traceGrant, c pass.Subject) {
	req := g.req
	req.Subject, req.Format = c, ""
	s.showTrace(w, r, &req, map[string]any{"degree": 2, "first_trace": g.seq})
}

// handleTracePerson opens a contact's record from a trace. Each opening
// is on record with the trace that led to it, before anything is shown;
// the phone number stays hidden (see handleTracePhone).
func (s *Server) handleTracePerson(w http.ResponseWriter, r *http.Request) {
	g := s.grantOf(w, r)
	if g == nil {
		return
	}
	m, ok := s.tracePerson(w, r, g)
	if !ok {
		return
	}
	if err := s.db.Audit(r.Context(), &store.AuditRecord{Actor: actorOf(r), Action: store.AuditPersonLookup,
		Subject: m.Subject, Detail: g.auditDetail(nil)}); err != nil {
		s.internalError(w, r, err)
		return
	}
	m.Phone = ""
	s.render(w, r, http.StatusOK, view.TracePersonPage(s.adminPage(r, "admin.trace.person"), m))
}

// auditDetail names the trace in a record of what was done with it.
func (g *traceGrant) auditDetail(extra map[string]any) []byte {
	d := map[string]any{
		"via": "trace", "trace": g.seq, "traced": hex.EncodeToString(g.req.Subject[:]),
		"from": g.req.From.UTC().Format(time.RFC3339), "to": g.req.To.UTC().Format(time.RFC3339),
		"window_minutes": int(g.req.Window / time.Minute),
	}
	for k, v := range extra {
		d[k] = v
	}
	return store.AuditDetail(d)
}

// tracePerson loads the contact the URL names through g; false after
// answering (404 for anyone the trace did not find or who is not
// registered here).
func (s *Server) tracePerson(w http.ResponseWriter, r *http.Request, g *traceGrant) (view.TracePerson, bool) {
	c, bad := g.contact(r.PathValue("subject"))
	if bad != "" {
		s.auditTraceRefusal(r, "trace_contact")
		s.fail(w, r, &Error{Code: ENotFound, Key: bad})
		return view.TracePerson{}, false
	}
	p, err := s.db.FindPerson(r.Context(), c)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, &Error{Code: ENotFound, Key: "admin.trace.act.err.not_here"})
		return view.TracePerson{}, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return view.TracePerson{}, false
	}
	w.Header().Set("Cache-Control", "no-store")
	return view.TracePerson{
		Token: g.token, Subject: hex.EncodeToString(c[:]), MaskedName: p.MaskedName, IDTail: p.IDTail,
		IDType: p.IDType, Color: p.Color.String(), Doses: p.Doses, HasPhone: p.Phone != "", Phone: p.Phone,
		Errors: view.FieldErrors{},
	}, true
}

// handleTracePhone shows a contact's phone number once the officer has
// said why; the reason, who and when go on record first.
func (s *Server) handleTracePhone(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	g := s.grantOf(w, r)
	if g == nil {
		return
	}
	m, ok := s.tracePerson(w, r, g)
	if !ok {
		return
	}
	t := i18n.FromRequest(r)
	p := s.adminPage(r, "admin.trace.person")
	m.Reason = strings.TrimSpace(r.PostForm.Get("reason"))
	switch {
	case m.Reason == "":
		m.Errors["reason"] = t.T("desk.err.required")
	case len(m.Reason) > 500:
		m.Errors["reason"] = t.T("desk.err.reason_length")
	}
	if len(m.Errors) > 0 {
		m.Phone, m.Error = "", t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.TracePersonPage(p, m))
		return
	}
	if err := s.db.Audit(r.Context(), &store.AuditRecord{Actor: actorOf(r), Action: store.AuditPhoneShown,
		Subject: m.Subject, Detail: g.auditDetail(map[string]any{"reason": m.Reason})}); err != nil {
		s.internalError(w, r, err)
		return
	}
	m.PhoneShown = true
	s.render(w, r, http.StatusOK, view.TracePersonPage(p, m))
}
