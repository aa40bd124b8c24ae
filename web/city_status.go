package web

import (
	"context"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"time"

	"passgate/cityask"
	"passgate/citylink"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// cityPublishTimeout bounds waiting for the city stream's
// acknowledgement of a status change.
const cityPublishTimeout = 10 * time.Second

// cityJoined reports whether this passgate is the city's console: a
// connection to the city tier and the city pseudonym key.
func (s *Server) cityJoined() bool {
	return s.city != nil && s.city.Conn != nil && len(s.city.Key) == pass.CityKeyLen
}

// handleCityStatusForm shows the city-wide status change form.
func (s *Server) handleCityStatusForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, view.CityStatusPage(s.adminPage(r, "city.status"), view.CityStatus{Joined: s.cityJoined(), Color: "red"}))
}

// handleCityStatus publishes a city-wide status change to the city
// stream: the ID number becomes the city subject here and goes nowhere;
// the page says it is done only once the stream acknowledged it, and the
// console's audit trail records it then.
func (s *Server) handleCityStatus(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	p := s.adminPage(r, "city.status")
	f := r.PostForm
	m := view.CityStatus{Joined: s.cityJoined(), IDNumber: f.Get("id_number"), Color: f.Get("color"), Reason: f.Get("reason"), Errors: view.FieldErrors{}}
	if !m.Joined {
		s.render(w, r, http.StatusServiceUnavailable, view.CityStatusPage(p, m))
		return
	}
	id, err := district.CheckIDNumber(m.IDNumber, time.Now())
	if err != nil {
		for k, v := range fieldErrs(t, err) {
			m.Errors[k] = v
		}
	}
	color, cerr := pass.ParseColor(m.Color)
	if cerr != nil || color.String() != m.Color {
		m.Errors["color"] = t.T("error.form_invalid")
	}
	reason, rerr := district.CheckCityStatusChange(color, m.Reason)
	if rerr != nil && cerr == nil {
		maps.Copy(m.Errors, fieldErrs(t, rerr))
	}
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		s.render(w, r, http.StatusUnprocessableEntity, view.CityStatusPage(p, m))
		return
	}
	rid, err := cityask.NewID()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	asker := string(actorOf(r))
	if !cityask.ValidAsker(asker) {
		asker = "console"
	}
	c := &store.CityStatus{ID: rid, Asker: asker, Subject: pass.Pseudonym(s.city.Key, id), Color: color, Reason: reason, At: time.Now()}
	ctx, cancel := context.WithTimeout(r.Context(), cityPublishTimeout)
	defer cancel()
	seq, err := citylink.PublishStatus(ctx, s.city.Conn, c)
	if err != nil {
		s.log.Error("city status change", "err", err)
		m.Error = t.T("city.trace.err.unavailable")
		s.render(w, r, http.StatusServiceUnavailable, view.CityStatusPage(p, m))
		return
	}
	if err := s.db.Audit(r.Context(), &store.AuditRecord{Actor: actorOf(r), Action: store.AuditCityStatusAsked,
		Subject: hex.EncodeToString(c.Subject[:]), Detail: store.AuditDetail(map[string]any{"request": rid, "color": color.String(),
			"stream_seq": seq})}); err != nil {
		s.internalError(w, r, errors.Join(errors.New("city status change: audit"), err))
		return
	}
	s.render(w, r, http.StatusOK, view.CityStatusPage(p, view.CityStatus{Joined: true, Color: "red", Done: rid}))
}
