package web

import (
	"net/http"

	"passgate/assets"
	"passgate/store"
	"passgate/web/view"
)

// adminPage is the layout data of an admin page, with the admin styles.
func (s *Server) adminPage(r *http.Request, titleKey string) view.Page {
	p := s.page(r, titleKey)
	p.CSS = append(p.CSS, assets.Path("/assets/", "admin.css"))
	p.Zone = s.zone(r.Context())
	return p
}

// maxAdminForm bounds an admin form: a few short fields.
const maxAdminForm = 16 << 10

// readForm reads a urlencoded form of at most limit bytes (maxAdminForm,
// maxFormBytes); on failure it answers 400 or 413 itself and returns
// false.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		writeFailure(w, r, formError(err))
		return false
	}
	return true
}

// maxAccountName is the longest user or device name the store accepts,
// in bytes; the form messages quote it, and a third of it as the number
// of Chinese characters (three bytes each in UTF-8).
const maxAccountName = 64

// actorOf names the logged-in user of r in the audit log, status
// histories and pass records. Every route that changes something needs a
// session, so there always is one.
func actorOf(r *http.Request) store.Actor {
	if u := userFrom(r.Context()); u != nil {
		return u.Actor()
	}
	return ""
}
