package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"passgate/export"
	"passgate/web/i18n"
	"passgate/web/view"
)

// exportForm is a form with the choices filled in.
func exportForm(m view.ExportForm) view.ExportForm {
	for _, k := range export.Kinds {
		m.Kinds = append(m.Kinds, string(k))
	}
	for _, f := range export.Formats {
		m.Formats = append(m.Formats, string(f))
	}
	return m
}

// handleExportForm shows the export form, preset to the current month.
func (s *Server) handleExportForm(w http.ResponseWriter, r *http.Request) {
	loc := s.zone(r.Context())
	y, mo, _ := time.Now().In(loc).Date()
	first := time.Date(y, mo, 1, 0, 0, 0, 0, loc)
	s.render(w, r, http.StatusOK, view.AdminExportPage(s.adminPage(r, "admin.export"), exportForm(view.ExportForm{
		Kind: string(export.KindScans), Format: string(export.CSV),
		From: first.Format(time.DateOnly), To: first.AddDate(0, 1, 0).Format(time.DateOnly),
		Jobs: s.userExportJobs(r),
	})))
}

// handleExport starts the requested export in the background and sends
// the admin to its page, which shows its progress, can cancel it and
// offers the file when done (see exportjob.go). A bad form is answered
// 422 with the form and what is wrong; a third export while two are
// running, 429.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	f := r.PostForm
	m := exportForm(view.ExportForm{
		Kind: f.Get("kind"), Format: f.Get("format"),
		From: strings.TrimSpace(f.Get("from")), To: strings.TrimSpace(f.Get("to")),
		Source: strings.TrimSpace(f.Get("source")), Decision: f.Get("decision"), Reason: strings.TrimSpace(f.Get("reason")),
		Errors: view.FieldErrors{},
	})
	req := &export.Request{
		Kind: export.Kind(m.Kind), Format: export.Format(m.Format),
		Source: m.Source, Decision: m.Decision, Reason: m.Reason, Location: s.zone(r.Context()),
	}
	var err error
	if req.From, err = export.ParseTime("from", m.From, req.Location); err != nil {
		m.Errors["from"] = t.T("admin.export.err.time")
	}
	if req.To, err = export.ParseTime("to", m.To, req.Location); err != nil {
		m.Errors["to"] = t.T("admin.export.err.time")
	}
	if len(m.Errors) == 0 {
		if err := req.Validate(); err != nil {
			msg := strings.TrimPrefix(err.Error(), export.ErrInvalid.Error()+": ")
			switch {
			case !slices.Contains(export.Kinds, req.Kind):
				m.Errors["kind"] = t.T("admin.export.err.kind")
			case !slices.Contains(export.Formats, req.Format):
				m.Errors["format"] = t.T("admin.export.err.format")
			case !req.From.Before(req.To) || req.To.Sub(req.From) > export.MaxWindow:
				m.Errors["to"] = t.T("admin.export.err.range", int(export.MaxWindow.Hours()/24))
			default:
				m.Errors["filter"] = t.T("admin.export.err.filter", msg)
			}
		}
	}
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		if msg, ok := m.Errors["filter"]; ok {
			m.Error = msg
		}
		m.Jobs = s.userExportJobs(r)
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminExportPage(s.adminPage(r, "admin.export"), m))
		return
	}

	d, err := s.db.District(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	job, err := s.exports.start(userFrom(r.Context()), req, export.FileName(d.Name, req))
	if errors.Is(err, errTooManyExports) {
		// 429: the request is fine, the appliance is busy; the form keeps
		// the values so the admin can try again once one has finished.
		m.Error = t.T("admin.exportjob.err.busy", maxRunningExports)
		m.Jobs = s.userExportJobs(r)
		s.render(w, r, http.StatusTooManyRequests, view.AdminExportPage(s.adminPage(r, "admin.export"), m))
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/export/jobs/"+job.id, http.StatusSeeOther)
}
