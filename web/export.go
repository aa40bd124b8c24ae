package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"passgate/export"
	"passgate/web/i18n"
	"passgate/web/view"
)

// exportRoutes are the admin's data exports.
func (s *Server) exportRoutes() []route {
	return []route{
		{"GET /admin/export", Admin, s.handleExportForm},
		{"POST /admin/export", Admin, s.handleExport},
	}
}

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
	y, mo, _ := time.Now().Date()
	first := time.Date(y, mo, 1, 0, 0, 0, 0, time.Local)
	s.render(w, r, http.StatusOK, view.AdminExportPage(s.adminPage(r, "admin.export"), exportForm(view.ExportForm{
		Kind: string(export.KindScans), Format: string(export.CSV),
		From: first.Format(time.DateOnly), To: first.AddDate(0, 1, 0).Format(time.DateOnly),
	})))
}

// handleExport streams the requested export as a download. The rows come
// from one database snapshot and go out as they are read (an XLSX
// workbook only once complete: a zip's directory comes last), so memory
// stays flat however long the range. Closing the download cancels the
// request's context, which stops the export. A bad form is answered 422
// with the form and what is wrong.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	if !readAdminForm(w, r) {
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
		Source: m.Source, Decision: m.Decision, Reason: m.Reason, Location: time.Local,
	}
	var err error
	if req.From, err = export.ParseTime("from", m.From, time.Local); err != nil {
		m.Errors["from"] = t.T("admin.export.err.time")
	}
	if req.To, err = export.ParseTime("to", m.To, time.Local); err != nil {
		m.Errors["to"] = t.T("admin.export.err.time")
	}
	if len(m.Errors) == 0 {
		if err := req.Validate(); err != nil {
			msg := strings.TrimPrefix(err.Error(), export.ErrInvalid.Error()+": ")
			switch {
			case !knownValue(export.Kinds, req.Kind):
				m.Errors["kind"] = t.T("admin.export.err.kind")
			case !knownValue(export.Formats, req.Format):
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
		s.render(w, r, http.StatusUnprocessableEntity, view.AdminExportPage(s.adminPage(r, "admin.export"), m))
		return
	}

	d, err := s.db.District(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	name := export.FileName(d.Name, req)
	h := w.Header()
	h.Set("Content-Type", req.Format.ContentType())
	h.Set("Content-Disposition", export.ContentDisposition(name))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// A month of scans takes longer than the server's write timeout,
	// which is meant for pages; this response ends when the export does
	// or the browser cancels it.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})

	start := time.Now()
	n, err := export.Run(r.Context(), s.db, w, req, nil)
	s.metrics.ExportDone(string(req.Kind), string(req.Format), n, err)
	if err != nil {
		// The status line is gone; abort the connection so the browser
		// reports a failed download rather than a complete, short file.
		if !errors.Is(err, r.Context().Err()) || r.Context().Err() == nil {
			s.log.Error("export failed", "file", name, "rows", n, "by", actorOf(r), "err", err)
		} else {
			s.log.Info("export cancelled", "file", name, "rows", n, "by", actorOf(r))
		}
		panic(http.ErrAbortHandler)
	}
	if err := export.Audit(context.WithoutCancel(r.Context()), s.db, actorOf(r), req, n); err != nil {
		s.log.Error("audit export", "err", err)
	}
	s.log.Info("export", "by", actorOf(r), "kind", req.Kind, "format", req.Format,
		"from", req.From.Format(time.RFC3339), "to", req.To.Format(time.RFC3339),
		"source", req.Source, "decision", req.Decision, "reason", req.Reason,
		"rows", n, "took", time.Since(start).Round(time.Millisecond))
}

func knownValue[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
