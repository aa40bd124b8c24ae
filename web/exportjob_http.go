package web

import (
	"errors"
	"net/http"
	"os"
	"time"

	"passgate/assets"
	"passgate/export"
	"passgate/web/i18n"
	"passgate/web/view"
)

// exportJobFor returns the job named by the path for the logged-in user,
// or answers 404: a job of another admin, an expired one and one that
// never existed look the same.
func (s *Server) exportJobFor(w http.ResponseWriter, r *http.Request) *exportJob {
	id := r.PathValue("id")
	j := s.exports.get(userFrom(r.Context()), id)
	if j == nil {
		s.fail(w, r, &Error{Code: ENotFound, Key: "admin.exportjob.gone"})
	}
	return j
}

// handleExportJob is the page of one export.
func (s *Server) handleExportJob(w http.ResponseWriter, r *http.Request) {
	j := s.exportJobFor(w, r)
	if j == nil {
		return
	}
	st := s.exports.status(j)
	p := s.adminPage(r, "admin.exportjob")
	p.CSS = append(p.CSS, assets.Path("/assets/", "exportjob.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "exportjob.js"))
	s.render(w, r, http.StatusOK, view.AdminExportJobPage(p, view.ExportJob{
		ID: j.id, FileName: j.name, State: st.State, Done: st.Done, Total: st.Total, Rows: st.Rows,
	}))
}

// handleExportJobStatus reports an export's progress as JSON, with the
// texts the page shows so the script needs no catalogue of its own.
func (s *Server) handleExportJobStatus(w http.ResponseWriter, r *http.Request) {
	j := s.exports.get(userFrom(r.Context()), r.PathValue("id"))
	if j == nil {
		writeError(w, http.StatusNotFound, "no such export")
		return
	}
	st := s.exports.status(j)
	t := i18n.FromRequest(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"state": st.State, "done": st.Done, "total": st.Total, "rows": st.Rows,
		"text":      t.T("admin.exportjob.rows", st.Done, st.Total),
		"stateText": t.T("admin.exportjob.state." + st.State),
	})
}

// handleExportJobCancel stops a running export, or discards a finished
// one's file, and shows the job's page again.
func (s *Server) handleExportJobCancel(w http.ResponseWriter, r *http.Request) {
	j := s.exportJobFor(w, r)
	if j == nil {
		return
	}
	s.exports.cancel(j)
	http.Redirect(w, r, "/admin/export/jobs/"+j.id, http.StatusSeeOther)
}

// handleExportJobFile downloads a finished export under its district,
// kind and range name (Chinese included, via filename*).
func (s *Server) handleExportJobFile(w http.ResponseWriter, r *http.Request) {
	j := s.exports.get(userFrom(r.Context()), r.PathValue("id"))
	if j == nil {
		writeError(w, http.StatusNotFound, "no such export")
		return
	}
	f, err := s.exports.open(j)
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, "this export has no file: it is still running, was cancelled or has expired")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", j.req.Format.ContentType())
	h.Set("Content-Disposition", export.ContentDisposition(j.name))
	h.Set("Cache-Control", "no-store")
	// A large workbook over a slow tablet link takes longer than the
	// server's write timeout, which is meant for pages.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	// ServeContent answers Range requests, so a broken download resumes.
	http.ServeContent(w, r, "", time.Time{}, f)
}

// userExportJobs lists the logged-in admin's exports for the form page,
// so one started earlier (or still running when the limit is hit) can be
// found again.
func (s *Server) userExportJobs(r *http.Request) []view.ExportJob {
	var out []view.ExportJob
	for _, j := range s.exports.list(userFrom(r.Context())) {
		st := s.exports.status(j)
		out = append(out, view.ExportJob{ID: j.id, FileName: j.name, State: st.State, Done: st.Done, Total: st.Total, Rows: st.Rows})
	}
	return out
}
