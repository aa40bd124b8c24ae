package web

import (
	"context"
	"net/http"
	"time"

	"github.com/a-h/templ"

	"passgate/assets"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// page returns the layout data for a request: language, user, path and
// the stylesheet every page uses.
func (s *Server) page(r *http.Request, titleKey string) view.Page {
	p := pageFor(r, titleKey)
	if p.User != "" {
		// Links to pages a gate does not serve are left out.
		p.Gate, _ = s.db.IsGate(r.Context())
	}
	p.Zone = s.zone(r.Context())
	return p
}

// pageFor is page for answers given before a handler runs (errors).
func pageFor(r *http.Request, titleKey string) view.Page {
	t := i18n.FromRequest(r)
	p := view.Page{
		T: t, Title: t.T(titleKey), Path: r.URL.Path,
		CSS: []string{assets.Path("/assets/", "style.css")},
	}
	if u := userFrom(r.Context()); u != nil {
		p.User, p.Role = u.Username, string(u.Role)
	}
	return p
}

// clockZone is the district's time zone as the checker holds it in
// memory with the policy: a gate shows every check's time in it without
// reading the store once per check.
func (s *Server) clockZone() *time.Location {
	if s.checker == nil {
		return (*store.Policy)(nil).Location()
	}
	pol := s.checker.Policy()
	return pol.Location()
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

// zone is the district's time zone (store.Policy.Location): dates typed
// into forms mean midnight there and pages show times there, whatever
// zone the server runs in. Should the policy be unreadable, the default
// zone: a page is better shown in the usual clock than not at all.
func (s *Server) zone(ctx context.Context) *time.Location {
	loc, err := s.db.Location(ctx)
	if err != nil {
		s.log.Error("read the district's time zone", "err", err)
		return (*store.Policy)(nil).Location()
	}
	return loc
}
