package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"passgate/scanner"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// inputConfig is how the admin pages see the appliance's own scanners.
type inputConfig struct {
	fromFlags []scanner.InputSpec           // configured on the command line
	validate  func(scanner.InputSpec) error // nil: only the basic checks here
	changed   func()                        // nil: nothing to tell
}

// inputName is what a scanner may be called: it becomes the scan source.
var inputName = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func (s *Server) handleInputs(w http.ResponseWriter, r *http.Request) {
	m := view.AdminInputs{}
	t := i18n.FromRequest(r)
	if name := r.URL.Query().Get("added"); name != "" {
		m.Notice = t.T("admin.inputs.added", name)
	}
	if name := r.URL.Query().Get("removed"); name != "" {
		m.Notice = t.T("admin.inputs.removed", name)
	}
	if name := r.URL.Query().Get("assigned"); name != "" {
		m.Notice = t.T("admin.inputs.assigned", name)
	}
	if r.URL.Query().Has("hold") {
		m.Notice = t.T("admin.inputs.hold_saved")
	}
	s.renderInputs(w, r, http.StatusOK, m)
}

func (s *Server) renderInputs(w http.ResponseWriter, r *http.Request, status int, m view.AdminInputs) {
	stored, err := s.db.FindInputs(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	state := map[string]scanner.InputStatus{}
	for _, st := range s.inputs.List() {
		state[st.Name] = st
	}
	add := func(spec scanner.InputSpec, fromFlags bool) {
		st := state[spec.Name]
		m.Inputs = append(m.Inputs, view.AdminInputRow{
			Name: spec.Name, Kind: spec.Kind, Spec: spec.Spec, FromFlags: fromFlags,
			Connected: st.Connected, LastError: st.LastError, Unterminated: st.Unterminated,
		})
	}
	for _, spec := range s.inputCfg.fromFlags {
		add(spec, true)
	}
	for _, in := range stored {
		add(scanner.InputSpec{Name: in.Name, Kind: in.Kind, Spec: in.Spec}, false)
	}
	sources, err := s.entranceSources(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	assigned, err := s.db.FindEntrances(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, src := range sources {
		m.Sources = append(m.Sources, view.AdminSourceRow{Name: src.name, Kind: src.kind, Entrance: assigned[src.name]})
	}
	m.Entrances = s.entranceNames()
	if m.HoldSeconds == 0 {
		hold, err := s.db.GateHold(r.Context())
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		m.HoldSeconds = int(hold / time.Second)
	}
	m.HoldMin, m.HoldMax = int(store.MinGateHold/time.Second), int(store.MaxGateHold/time.Second)
	s.render(w, r, status, view.AdminInputsPage(s.adminPage(r, "admin.inputs"), m))
}

// handleAddInput stores a new scanner; the manager starts reading it.
func (s *Server) handleAddInput(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	spec := scanner.InputSpec{
		Name: strings.TrimSpace(r.PostForm.Get("name")),
		Kind: r.PostForm.Get("kind"),
		Spec: strings.TrimSpace(r.PostForm.Get("spec")),
	}
	m := view.AdminInputs{Name: spec.Name, Kind: spec.Kind, Spec: spec.Spec, Errors: view.FieldErrors{}}
	if !inputName.MatchString(spec.Name) {
		m.Errors["name"] = t.T("admin.inputs.err.name")
	}
	for _, f := range s.inputCfg.fromFlags {
		if strings.EqualFold(f.Name, spec.Name) {
			m.Errors["name"] = t.T("admin.inputs.err.name_used")
		}
	}
	if spec.Kind != "serial" && spec.Kind != "evdev" {
		m.Errors["kind"] = t.T("admin.inputs.err.kind")
	}
	// Only devices: an admin form must not become a way to read any file.
	if !strings.HasPrefix(spec.Spec, "/dev/") || strings.Contains(spec.Spec, "..") {
		m.Errors["spec"] = t.T("admin.inputs.err.spec", "/dev/…")
	} else if s.inputCfg.validate != nil && len(m.Errors) == 0 {
		if err := s.inputCfg.validate(spec); err != nil {
			m.Errors["spec"] = t.T("admin.inputs.err.spec", err.Error())
		}
	}
	if len(m.Errors) == 0 {
		err := s.db.CreateInput(r.Context(), &store.Input{Name: spec.Name, Kind: spec.Kind, Spec: spec.Spec, Actor: actorOf(r)})
		switch {
		case errors.Is(err, store.ErrConflict):
			m.Errors["name"] = t.T("admin.inputs.err.name_used")
		case err != nil:
			s.internalError(w, r, err)
			return
		}
	}
	if len(m.Errors) > 0 {
		m.Error = t.T("error.form_invalid")
		s.renderInputs(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	s.log.Info("input added", "input", spec.Name, "kind", spec.Kind, "spec", spec.Spec, "by", actorOf(r))
	if s.inputCfg.changed != nil {
		s.inputCfg.changed()
	}
	http.Redirect(w, r, "/admin/inputs?added="+url.QueryEscape(spec.Name), http.StatusSeeOther)
}

// handleRemoveInput removes a scanner; the manager stops reading it.
func (s *Server) handleRemoveInput(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	name := r.PostForm.Get("name")
	err := s.db.DeleteInput(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.renderInputs(w, r, http.StatusUnprocessableEntity, view.AdminInputs{Error: i18n.FromRequest(r).T("admin.inputs.err.not_found")})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("input removed", "input", name, "by", actorOf(r))
	if s.inputCfg.changed != nil {
		s.inputCfg.changed()
	}
	http.Redirect(w, r, "/admin/inputs?removed="+url.QueryEscape(name), http.StatusSeeOther)
}

// entranceSource is a scan source an admin may place at an entrance: an
// input the appliance reads, or an API device.
type entranceSource struct {
	name string
	kind string // "serial", "evdev" or "device"
}

// entranceSources lists the sources that can stand at an entrance: the
// inputs (command line and stored) and the unrevoked API devices.
func (s *Server) entranceSources(ctx context.Context) ([]entranceSource, error) {
	var out []entranceSource
	for _, f := range s.inputCfg.fromFlags {
		out = append(out, entranceSource{f.Name, f.Kind})
	}
	stored, err := s.db.FindInputs(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range stored {
		out = append(out, entranceSource{in.Name, in.Kind})
	}
	devs, err := s.db.FindDevices(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if d.RevokedAt.IsZero() {
			out = append(out, entranceSource{d.Name, "device"})
		}
	}
	return out, nil
}

// handleSetEntrance places an input or API device at an entrance (or at
// none, with an empty entrance): the gate screens at that entrance show
// its checks in their decision panel from the next check on.
func (s *Server) handleSetEntrance(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	source := r.PostForm.Get("source")
	entrance := strings.TrimSpace(r.PostForm.Get("entrance"))
	sources, err := s.entranceSources(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	known := false
	for _, src := range sources {
		known = known || src.name == source
	}
	m := view.AdminInputs{Errors: view.FieldErrors{}}
	switch {
	case !known:
		m.Error = t.T("admin.inputs.err.not_found")
	case entrance != "" && store.CheckEntrance(entrance) != nil:
		m.Error = t.T("admin.inputs.err.entrance")
	}
	if m.Error != "" {
		s.renderInputs(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	if err := s.db.SetEntrance(r.Context(), source, entrance, actorOf(r)); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.loadEntrances(r.Context()); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("input entrance set", "source", source, "entrance", entrance, "by", actorOf(r))
	http.Redirect(w, r, "/admin/inputs?assigned="+url.QueryEscape(source), http.StatusSeeOther)
}

// handleSetGateHold sets how long the gate screens keep a result.
func (s *Server) handleSetGateHold(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	v := strings.TrimSpace(r.PostForm.Get("seconds"))
	n, err := strconv.Atoi(v)
	d := time.Duration(n) * time.Second
	if err != nil || len(v) > 3 || d < store.MinGateHold || d > store.MaxGateHold {
		m := view.AdminInputs{Errors: view.FieldErrors{"hold": t.T("admin.inputs.err.hold",
			int(store.MinGateHold/time.Second), int(store.MaxGateHold/time.Second))}}
		m.Error = t.T("error.form_invalid")
		s.renderInputs(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	if err := s.db.SetGateHold(r.Context(), d, actorOf(r)); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("gate hold set", "seconds", n, "by", actorOf(r))
	http.Redirect(w, r, "/admin/inputs?hold=1", http.StatusSeeOther)
}
