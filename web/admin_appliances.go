package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"passgate/districtsync"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Bounds of an enrolment code's validity, in hours.
const (
	defaultCodeHours = 24
	maxCodeHours     = 7 * 24
)

func (s *Server) handleAppliances(w http.ResponseWriter, r *http.Request) {
	m := view.AdminAppliances{Hours: strconv.Itoa(defaultCodeHours)}
	if name := r.URL.Query().Get("retired"); name != "" {
		m.Notice = i18n.FromRequest(r).T("admin.appliances.retired", name)
	}
	if name := r.URL.Query().Get("draining"); name != "" {
		m.Notice = i18n.FromRequest(r).T("admin.appliances.draining", name)
	}
	s.renderAppliances(w, r, http.StatusOK, m)
}

// renderAppliances shows the registry with m's form state. The page may
// carry a fresh enrolment code: never cached.
func (s *Server) renderAppliances(w http.ResponseWriter, r *http.Request, status int, m view.AdminAppliances) {
	ctx := r.Context()
	rows, err := s.applianceRows(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	m.Appliances = rows
	m.HTTPS = s.hubIdentity != nil
	if st, err := s.db.SyncStatus(ctx); err != nil {
		s.internalError(w, r, err)
		return
	} else if st.Enrolled {
		m.EnrolledElsewhere = st.Hub
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, view.AdminAppliancesPage(s.adminPage(r, "admin.appliances"), m))
}

// handleAddAppliance registers an appliance and shows its one-time
// enrolment code, which pins this hub's TLS identity.
func (s *Server) handleAddAppliance(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	m := view.AdminAppliances{
		Name:   strings.TrimSpace(r.PostForm.Get("name")),
		Role:   string(store.ApplianceGate),
		Hours:  strings.TrimSpace(r.PostForm.Get("hours")),
		Errors: view.FieldErrors{},
	}
	if err := store.CheckApplianceName(m.Name); err != nil {
		m.Errors["name"] = t.T("admin.appliances.err.name", store.MaxApplianceName)
	}
	// "issuer=1" is the older form's checkbox: an office.
	if v := r.PostForm.Get("role"); v != "" {
		role, err := store.ParseApplianceRole(v)
		if err != nil {
			m.Errors["role"] = t.T("admin.appliances.err.role")
		}
		m.Role = string(role)
	} else if r.PostForm.Get("issuer") == "1" {
		m.Role = string(store.ApplianceOffice)
	}
	hours, err := strconv.Atoi(m.Hours)
	if err != nil || hours < 1 || hours > maxCodeHours {
		m.Errors["hours"] = t.T("admin.appliances.err.hours", maxCodeHours)
	}
	if s.hubIdentity == nil {
		m.Error = t.T("admin.appliances.err.https")
		s.renderAppliances(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	var code districtsync.Code
	if len(m.Errors) == 0 {
		pin, err := districtsync.PinOfDER(s.hubIdentity)
		if err == nil {
			code, err = districtsync.NewCode(pin)
		}
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		expires := time.Now().Add(time.Duration(hours) * time.Hour)
		_, err = s.db.AddAppliance(r.Context(), m.Name, store.ApplianceRole(m.Role), code.Hash(), expires, actorOf(r))
		switch {
		case errors.Is(err, store.ErrConflict):
			m.Errors["name"] = t.T("admin.appliances.err.name_used")
		case errors.Is(err, store.ErrInvalid):
			// Not a hub: enrolled elsewhere, or without the root's key.
			m.Error = t.T("admin.appliances.err.not_hub")
			s.renderAppliances(w, r, http.StatusUnprocessableEntity, m)
			return
		case err != nil:
			s.internalError(w, r, err)
			return
		default:
			m.Code, m.CodeFor, m.CodeExpires = code.String(), m.Name, expires
		}
	}
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		s.renderAppliances(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	s.log.Info("appliance added", "appliance", m.Name, "role", m.Role, "by", actorOf(r))
	m.Name, m.Role, m.Hours = "", string(store.ApplianceGate), strconv.Itoa(defaultCodeHours)
	s.renderAppliances(w, r, http.StatusOK, m)
}

// handleDrainAppliance puts an appliance in draining before it is
// retired (audited by the store): it issues no new passes and keeps
// sending what it holds.
func (s *Server) handleDrainAppliance(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	name := r.PostForm.Get("name")
	_, err := s.db.DrainAppliance(r.Context(), name, actorOf(r))
	s.applianceChanged(w, r, name, err, "draining")
}

// handleRetireAppliance retires an appliance: its token stops working
// and its issuer key is revoked on every appliance of the district.
func (s *Server) handleRetireAppliance(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	name := r.PostForm.Get("name")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	m := view.AdminAppliances{Hours: strconv.Itoa(defaultCodeHours)}
	if reason == "" || len(reason) > 500 {
		m.Error = t.T("admin.appliances.err.reason")
		s.renderAppliances(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	_, err := s.db.RetireAppliance(r.Context(), name, reason, actorOf(r))
	s.applianceChanged(w, r, name, err, "retired")
}

// applianceChanged answers a change to the appliance name (done is
// "draining" or "retired"): back to the page saying so, or the page
// again with why it was refused.
func (s *Server) applianceChanged(w http.ResponseWriter, r *http.Request, name string, err error, done string) {
	t := i18n.FromRequest(r)
	m := view.AdminAppliances{Hours: strconv.Itoa(defaultCodeHours)}
	switch {
	case errors.Is(err, store.ErrNotFound):
		m.Error = t.T("admin.appliances.err.unknown", name)
	case errors.Is(err, store.ErrRetired):
		m.Error = t.T("admin.appliances.err.already", name)
	case errors.Is(err, store.ErrConflict):
		m.Error = t.T("admin.appliances.err.drain", name)
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	if m.Error != "" {
		s.renderAppliances(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	s.log.Info("appliance "+done, "appliance", name, "by", actorOf(r))
	http.Redirect(w, r, "/admin/appliances?"+done+"="+url.QueryEscape(name), http.StatusSeeOther)
}
