package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// handleDevices lists the scanner devices with the form for a new one.
func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	s.renderDevices(w, r, http.StatusOK, view.AdminDevices{})
}

// renderDevices completes m with the device list and renders the page.
func (s *Server) renderDevices(w http.ResponseWriter, r *http.Request, status int, m view.AdminDevices) {
	devs, err := s.db.FindDevices(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// The confirmation after a revocation names the device from the URL;
	// it is shown only when that device is indeed revoked, so a crafted
	// link cannot make the page claim what did not happen.
	revoked := r.URL.Query().Get("revoked")
	for _, d := range devs {
		m.Devices = append(m.Devices, view.AdminDeviceRow{Name: d.Name, Created: d.CreatedAt, Revoked: d.RevokedAt})
		if r.Method == http.MethodGet && revoked != "" && d.Name == revoked && !d.RevokedAt.IsZero() {
			m.Notice = i18n.FromRequest(r).T("admin.devices.revoked_ok", d.Name)
		}
	}
	if m.ScanURL == "" {
		m.ScanURL = scanURL(r)
	}
	s.render(w, r, status, view.AdminDevicesPage(s.adminPage(r, "admin.devices"), m))
}

// scanURL is the scan API's address as this browser reached the
// appliance, which is usually how a gateway on the same network will too.
func scanURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/api/v1/scans"
}

// handleCreateDevice registers a device and shows its token, once: it is
// rendered into this response and never stored or put in a URL.
func (s *Server) handleCreateDevice(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	name := strings.TrimSpace(r.PostForm.Get("name"))
	m := view.AdminDevices{Name: name, Errors: view.FieldErrors{}}
	if name == "" {
		m.Errors["name"] = t.T("admin.devices.err.name_required")
		m.Error = t.T("error.form_invalid")
		s.renderDevices(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	dev, token, err := s.db.CreateDevice(r.Context(), name, actorOf(r))
	switch {
	case errors.Is(err, store.ErrConflict):
		m.Errors["name"] = t.T("admin.devices.err.name_taken")
	case errors.Is(err, store.ErrInvalid):
		m.Errors["name"] = t.T("admin.devices.err.name_invalid", maxAccountName, maxAccountName/3)
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		s.renderDevices(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	s.log.Info("device created", "device", dev.Name, "by", actorOf(r))
	s.renderDevices(w, r, http.StatusOK, view.AdminDevices{NewToken: &view.ShownSecret{Name: dev.Name, Secret: token}})
}

// handleRevokeDevice revokes a device; its token stops working at once,
// also for requests the token cache would otherwise still answer.
func (s *Server) handleRevokeDevice(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	name := r.PostForm.Get("name")
	err := s.db.RevokeDevice(r.Context(), name, actorOf(r))
	if errors.Is(err, store.ErrNotFound) {
		s.renderDevices(w, r, http.StatusUnprocessableEntity, view.AdminDevices{Error: i18n.FromRequest(r).T("admin.devices.err.not_found")})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.devices.forget(name)
	s.log.Info("device revoked", "device", name, "by", actorOf(r))
	http.Redirect(w, r, "/admin/devices?revoked="+url.QueryEscape(name), http.StatusSeeOther)
}

// forget drops the cached lookups of the device called name, so that a
// revocation made here takes effect on the next request rather than after
// the cache's time to live.
func (c *deviceCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	for k, e := range c.m {
		if e.dev != nil && e.dev.Name == name {
			delete(c.m, k)
		}
	}
}
