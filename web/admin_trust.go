package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// maxTrustForm bounds the upload of a trust anchor file: the file twice
// (chosen and pasted) and the multipart framing.
const maxTrustForm = 2*pass.MaxAnchorLen + 4<<10

func (s *Server) handleTrust(w http.ResponseWriter, r *http.Request) {
	t := i18n.FromRequest(r)
	m := view.AdminTrust{}
	q := r.URL.Query()
	if d := q.Get("added"); d != "" {
		n, _ := strconv.Atoi(q.Get("n"))
		if n > 0 {
			m.Notice = t.T("admin.trust.added", d, n)
		} else {
			m.Notice = t.T("admin.trust.already", d)
		}
	}
	if q.Get("err") == "no_root" {
		m.Error = t.T("admin.trust.err.no_root")
	}
	s.renderTrust(w, r, http.StatusOK, m)
}

func (s *Server) renderTrust(w http.ResponseWriter, r *http.Request, status int, m view.AdminTrust) {
	roots, err := s.db.TrustedRoots(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, k := range roots {
		m.Roots = append(m.Roots, view.TrustRootRow{District: k.District, Own: k.Own, Alg: k.Alg.String(), KID: k.KID.String(),
			Fingerprint: pass.FormatFingerprint(k.Fingerprint), Added: k.CreatedAt.In(s.zone(r.Context())).Format("2006-01-02 15:04")})
	}
	s.render(w, r, status, view.AdminTrustPage(s.adminPage(r, "admin.trust"), m))
}

// handleTrustAnchor downloads this district's trust anchor file.
func (s *Server) handleTrustAnchor(w http.ResponseWriter, r *http.Request) {
	b, err := s.db.ExportTrustAnchor(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		http.Redirect(w, r, "/admin/trust?err=no_root", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="trust-anchor.txt"`)
	_, _ = w.Write(b)
}

// handleTrustCheck reads an uploaded or pasted trust anchor file and
// shows what it holds, asking for the fingerprint compared out of band.
// Nothing changes yet.
func (s *Server) handleTrustCheck(w http.ResponseWriter, r *http.Request) {
	t := i18n.FromRequest(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxTrustForm)
	if err := r.ParseMultipartForm(maxTrustForm); err != nil {
		writeError(w, http.StatusBadRequest, "could not read form")
		return
	}
	anchor := []byte(r.PostForm.Get("anchor"))
	if f, _, err := r.FormFile("file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, pass.MaxAnchorLen+1))
		f.Close()
		if err != nil {
			writeError(w, http.StatusBadRequest, "could not read form")
			return
		}
		if len(b) > 0 {
			anchor = b
		}
	}
	if len(anchor) == 0 {
		s.renderTrust(w, r, http.StatusUnprocessableEntity, view.AdminTrust{Error: t.T("admin.trust.err.none")})
		return
	}
	a, err := pass.ParseAnchor(anchor)
	if err != nil {
		s.renderTrust(w, r, http.StatusUnprocessableEntity, view.AdminTrust{Error: t.T("admin.trust.err.file", err.Error())})
		return
	}
	s.renderTrustConfirm(w, r, http.StatusOK, a, anchor, view.AdminTrustConfirm{})
}

func (s *Server) renderTrustConfirm(w http.ResponseWriter, r *http.Request, status int, a *pass.Anchor, anchor []byte, m view.AdminTrustConfirm) {
	m.District, m.Name, m.Anchor = a.District, a.Name, string(anchor)
	for _, k := range a.Roots {
		m.Roots = append(m.Roots, view.TrustAnchorRoot{Alg: k.Alg.String(), KID: k.KID.String(),
			Fingerprint: pass.FormatFingerprint(k.Fingerprint())})
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, view.AdminTrustConfirmPage(s.adminPage(r, "admin.trust.confirm"), m))
}

// handleTrustImport adds the file's roots once the typed fingerprint
// matches; the store audits the import or its refusal.
func (s *Server) handleTrustImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTrustForm)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "could not read form")
		return
	}
	t := i18n.FromRequest(r)
	anchor := []byte(r.PostForm.Get("anchor"))
	fp := r.PostForm.Get("fingerprint")
	a, added, err := s.db.ImportTrustAnchor(r.Context(), anchor, fp, actorOf(r))
	if err == nil {
		s.log.Info("district root trusted", "district", a.District, "added", added, "by", actorOf(r))
		http.Redirect(w, r, "/admin/trust?added="+url.QueryEscape(a.District)+"&n="+strconv.Itoa(added), http.StatusSeeOther)
		return
	}
	if a == nil { // the file itself is refused
		s.renderTrust(w, r, http.StatusUnprocessableEntity, view.AdminTrust{Error: t.T("admin.trust.err.file", err.Error())})
		return
	}
	m := view.AdminTrustConfirm{Fingerprint: fp, Errors: view.FieldErrors{}}
	switch {
	case errors.Is(err, store.ErrFingerprintMismatch):
		m.Errors["fingerprint"] = t.T("admin.trust.err.fp")
	case errors.Is(err, store.ErrInvalid):
		m.Errors["fingerprint"] = t.T("admin.trust.err.fp_form")
	case errors.Is(err, store.ErrOwnDistrict):
		m.Error = t.T("admin.trust.err.own")
	case errors.Is(err, store.ErrConflict):
		m.Error = t.T("admin.trust.err.conflict")
	default:
		s.internalError(w, r, err)
		return
	}
	if m.Error == "" {
		m.Error = t.T("error.form_invalid")
	}
	s.log.Warn("trust anchor refused", "district", a.District, "err", err, "by", actorOf(r))
	s.renderTrustConfirm(w, r, http.StatusUnprocessableEntity, a, anchor, m)
}
