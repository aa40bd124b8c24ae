package web

import (
	"net/http"

	"github.com/a-h/templ"

	"passgate/assets"
	"passgate/web/i18n"
	"passgate/web/view"
)

// page returns the layout data for a request: language, user, path and
// the stylesheet every page uses.
func (s *Server) page(r *http.Request, titleKey string) view.Page {
	t := i18n.FromRequest(r)
	p := view.Page{
		T: t, Title: t.T(titleKey), Path: r.URL.Path,
		CSS: []string{assets.Path("/assets/", "style.css")},
	}
	if u := userFrom(r.Context()); u != nil {
		p.User, p.Role = u.Username, u.Role
		// Links to pages a gate does not serve are left out; on an error
		// they stay, and the page itself answers 404.
		p.Gate, _ = s.db.IsGate(r.Context())
	}
	return p
}

// render writes a component with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.log.Warn("render", "path", r.URL.Path, "err", err)
	}
}

// forbidden answers 403 with a page that says so in the user's language.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request) {
	p := s.page(r, "error.forbidden")
	s.render(w, r, http.StatusForbidden, view.Message(p, p.T.T("error.forbidden")))
}
