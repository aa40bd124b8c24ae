package web

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"passgate/district"
	"passgate/export"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// traceDefaultWindow is the ±window the form offers, in minutes.
const traceDefaultWindow = "15"

// handleTraceForm shows the tracing form, preset to the last 14 days.
func (s *Server) handleTraceForm(w http.ResponseWriter, r *http.Request) {
	loc := s.zone(r.Context())
	y, mo, d := time.Now().In(loc).Date()
	tomorrow := time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
	s.render(w, r, http.StatusOK, view.AdminTracePage(s.adminPage(r, "admin.trace"), view.TraceForm{
		From: tomorrow.AddDate(0, 0, -14).Format(time.DateOnly), To: tomorrow.Format(time.DateOnly),
		Window: traceDefaultWindow,
	}))
}

// traceFieldError maps a request validation error to the form field and
// message it belongs to.
func traceFieldError(t i18n.Printer, err error, errs view.FieldErrors) {
	var te *export.TraceError
	if !errors.As(err, &te) {
		errs["to"] = t.T("admin.export.err.time")
		return
	}
	switch te.Field {
	case "window":
		errs["window"] = t.T("admin.trace.err.window", int(export.MinTraceWindow/time.Minute), int(export.MaxTraceWindow/time.Minute))
	case "format":
		errs["format"] = t.T("admin.export.err.format")
	default:
		errs["to"] = t.T("admin.trace.err.range", int(export.MaxTraceRange.Hours()/24))
	}
}

// parseTraceTimes fills r's range and window from the form's text,
// dates in r.Location, recording field errors in errs.
func parseTraceTimes(t i18n.Printer, r *export.TraceRequest, from, to, window string, errs view.FieldErrors) {
	var err error
	if r.From, err = export.ParseTime("from", from, r.Location); err != nil {
		errs["from"] = t.T("admin.export.err.time")
	}
	if r.To, err = export.ParseTime("to", to, r.Location); err != nil {
		errs["to"] = t.T("admin.export.err.time")
	}
	if r.Window, err = export.ParseWindow(window); err != nil {
		errs["window"] = t.T("admin.trace.err.window", int(export.MinTraceWindow/time.Minute), int(export.MaxTraceWindow/time.Minute))
	}
	if len(errs) == 0 {
		if err := r.Validate(); err != nil {
			traceFieldError(t, err, errs)
		}
	}
}

// handleTrace runs a tracing query from the form and shows the result.
// A bad form is answered 422 with the form and what is wrong; the ID
// number is echoed only into that form.
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	f := r.PostForm
	m := view.TraceForm{
		IDNumber: f.Get("id_number"),
		From:     strings.TrimSpace(f.Get("from")), To: strings.TrimSpace(f.Get("to")),
		Window: strings.TrimSpace(f.Get("window")), Errors: view.FieldErrors{},
		AllowBadCheckDigit: f.Get("allow_bad_check_digit") == "1",
	}
	req := &export.TraceRequest{Location: s.zone(r.Context()), Limit: s.traceLimit}
	opts := district.IDOptions(m.AllowBadCheckDigit)
	// A legacy number registered with a wrong check digit is traced when
	// the tracer confirms it, as it was registered.
	id, err := district.CheckIDNumber(m.IDNumber, time.Now(), opts...)
	if err != nil {
		for k, v := range fieldErrs(t, err) {
			m.Errors[k] = v
		}
		m.AskBadCheckDigit = district.IsBadCheckDigit(err)
	}
	parseTraceTimes(t, req, m.From, m.To, m.Window, m.Errors)
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminTracePage(s.adminPage(r, "admin.trace"), m))
		return
	}
	subjects, err := district.SubjectsOf(r.Context(), s.db, id)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	req.Subject, req.Also = subjects[0], subjects[1:]
	s.showTrace(w, r, req, nil)
}

// showTrace runs req, keeps its result for acting on (see traceGrant)
// and shows it; extra goes into the trace's audit record.
func (s *Server) showTrace(w http.ResponseWriter, r *http.Request, req *export.TraceRequest, extra map[string]any) {
	res, seq, ok := s.runTrace(w, r, req, extra)
	if !ok {
		return
	}
	g := newTraceGrant(seq, req, res, traceView(i18n.FromRequest(r), req, res))
	s.traces.put(r, g, s.db.Now())
	s.renderTrace(w, r, http.StatusOK, g, g.actView(view.TraceResults{}))
}

// renderTrace shows m, the page of g's result, at the page the request
// asks for (?page=, from 1; the first otherwise).
func (s *Server) renderTrace(w http.ResponseWriter, r *http.Request, status int, g *traceGrant, m view.TraceResults) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	tracePage(&m, &g.req, g.res, page, tracePageRows)
	// The page lists health data about people: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, view.AdminTraceResults(s.adminPage(r, "admin.trace.results"), m))
}

// tracePageRows is how many checks, contact rows and contacts a page of a
// trace lists at most. A busy gate gives tens of thousands of contact
// rows; a page of all of them costs seconds to render and to scroll, and
// the download holds them all.
const tracePageRows = 500

// tracePage fills in m's page n (from 1, clamped to the pages there are)
// of res, size rows: the checks, the contact rows (in check order) and
// the contacts that page shows, times in req's zone. Only the page's
// rows are formatted, so a page costs the same however long the result.
func tracePage(m *view.TraceResults, req *export.TraceRequest, res *store.TraceResult, n, rows int) {
	const layout = "2006-01-02 15:04:05"
	loc := req.Location
	longest := max(len(res.Checks), res.ContactRows, len(res.Contacts))
	m.PageRows, m.Pages = rows, max(1, (longest+rows-1)/rows)
	m.Page = min(max(n, 1), m.Pages)
	lo := (m.Page - 1) * rows
	window := func(total int) (int, int) { return min(lo, total), min(lo+rows, total) }
	a, b := window(len(res.Checks))
	m.PageChecks = make([]view.TraceRow, 0, b-a)
	for _, c := range res.Checks[a:b] {
		m.PageChecks = append(m.PageChecks, view.TraceRow{At: c.At.In(loc).Format(layout), Source: c.Source, Decision: c.Decision,
			Reason: c.Reason, Contacts: len(c.Contacts), ContactsOmitted: c.ContactsOmitted})
	}
	a, b = window(len(res.Contacts))
	m.PageSummary = make([]view.TraceSummaryRow, 0, b-a)
	for _, s := range res.Contacts[a:b] {
		m.PageSummary = append(m.PageSummary, view.TraceSummaryRow{
			Subject: hex.EncodeToString(s.Subject[:]), Name: s.MaskedName, IDTail: s.IDTail, Overlaps: s.Overlaps,
			First: s.First.In(loc).Format(layout), Last: s.Last.In(loc).Format(layout),
			Places: strings.Join(s.Places, ", "), Known: s.MaskedName != "",
		})
	}
	a, b = window(res.ContactRows)
	m.PageContacts = make([]view.TraceContactLine, 0, b-a)
	seen := 0
	for _, c := range res.Checks {
		if seen >= b {
			break
		}
		if seen+len(c.Contacts) > a {
			at := c.At.In(loc).Format(layout)
			for _, ct := range c.Contacts[max(a-seen, 0):min(b-seen, len(c.Contacts))] {
				m.PageContacts = append(m.PageContacts, view.TraceContactLine{CheckAt: at, Source: c.Source, TraceContactRow: view.TraceContactRow{
					Subject: hex.EncodeToString(ct.Subject[:]), At: ct.At.In(loc).Format(layout),
					Offset: formatOffset(ct.Offset), Decision: ct.Decision, Name: ct.MaskedName, IDTail: ct.IDTail,
					Known: ct.MaskedName != "",
				}})
			}
		}
		seen += len(c.Contacts)
	}
}

// handleTraceDownload repeats a query shown on a results page (by
// pseudonym, from the page's hidden fields) and sends it as a file. The
// result is bounded (store.MaxTraceRows), so it is written to memory
// first: a failure is then a clean error page, not a cut download.
func (s *Server) handleTraceDownload(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	f := r.PostForm
	errs := view.FieldErrors{}
	req := &export.TraceRequest{Format: export.Format(f.Get("format")), Location: s.zone(r.Context()), Limit: s.traceLimit}
	if b, err := hex.DecodeString(f.Get("subject")); err != nil || len(b) != len(pass.Subject{}) {
		errs["subject"] = t.T("admin.trace.err.subject")
	} else {
		copy(req.Subject[:], b)
	}
	parseTraceTimes(t, req, f.Get("from"), f.Get("to"), f.Get("window"), errs)
	if req.Format == "" {
		errs["format"] = t.T("admin.export.err.format")
	}
	if len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, k := range []string{"subject", "from", "to", "window", "format"} {
			if v, ok := errs[k]; ok {
				msgs = append(msgs, v)
			}
		}
		s.render(w, r, http.StatusUnprocessableEntity, view.Message(s.adminPage(r, "admin.trace"), strings.Join(msgs, " ")))
		return
	}
	res, _, ok := s.runTrace(w, r, req, nil)
	if !ok {
		return
	}
	s.sendTrace(w, r, req, res)
}

// sendTrace writes res as a file in req's format.
func (s *Server) sendTrace(w http.ResponseWriter, r *http.Request, req *export.TraceRequest, res *store.TraceResult) {
	var buf bytes.Buffer
	if err := export.WriteTrace(&buf, req, res); err != nil {
		s.internalError(w, r, err)
		return
	}
	d, err := s.db.District(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", req.Format.ContentType())
	h.Set("Content-Disposition", export.ContentDisposition(export.TraceFileName(d.Name, req)))
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = buf.WriteTo(w)
}

// runTrace runs req and records it in the audit trail (with extra in
// the record's detail), returning the record's seq; it answers the
// request itself on failure. A query whose audit record cannot be
// written is not shown: tracing is only allowed on the record.
func (s *Server) runTrace(w http.ResponseWriter, r *http.Request, req *export.TraceRequest, extra map[string]any) (*store.TraceResult, int64, bool) {
	start := time.Now()
	res, err := s.db.Trace(r.Context(), req.Query())
	if err != nil {
		s.internalError(w, r, err)
		return nil, 0, false
	}
	seq, err := export.AuditTraceRecord(context.WithoutCancel(r.Context()), s.db, actorOf(r), req, res, extra)
	if err != nil {
		s.internalError(w, r, fmt.Errorf("audit trace: %w", err))
		return nil, 0, false
	}
	s.log.Info("trace", "by", actorOf(r), "subject", hex.EncodeToString(req.Subject[:]),
		"from", req.From.Format(time.RFC3339), "to", req.To.Format(time.RFC3339), "window", req.Window,
		"format", req.Format, "checks", len(res.Checks), "contacts", len(res.Contacts),
		"truncated", res.Truncated, "took", time.Since(start).Round(time.Millisecond))
	return res, seq, true
}

// traceView is a result's page apart from its rows (see tracePage): the
// range in the request's zone (the district's), the counts of the whole
// result and what was cut.
func traceView(t i18n.Printer, req *export.TraceRequest, res *store.TraceResult) view.TraceResults {
	const layout = "2006-01-02 15:04:05"
	win := strconv.Itoa(int(req.Window / time.Minute))
	m := view.TraceResults{
		Subject: hex.EncodeToString(req.Subject[:]),
		From:    req.From.Format(time.RFC3339), To: req.To.Format(time.RFC3339), Window: win,
		Span:       t.T("admin.trace.span", req.From.In(req.Location).Format(layout), req.To.In(req.Location).Format(layout), win),
		CheckCount: len(res.Checks), ContactCount: len(res.Contacts),
		ContactRows: res.ContactRows, Truncated: res.Truncated, TruncateLimit: res.Limit,
		ChecksOmitted: res.ChecksOmitted, RowsOmitted: res.RowsOmitted,
	}
	for _, f := range export.Formats {
		m.Formats = append(m.Formats, string(f))
	}
	return m
}

// formatOffset shows an offset as a signed minutes:seconds, "+0:00" for
// the same instant.
func formatOffset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%s%d:%02d", sign, int(d/time.Minute), int(d%time.Minute/time.Second))
}
