package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// ErrorCode names a kind of failure a request can end in. Each code has one
// HTTP status and one message in both languages (errorKinds).
type ErrorCode string

// The failures the appliance answers with an error page (or, to scripts and
// scanner gateways, a JSON error).
const (
	EBadRequest  ErrorCode = "bad_request"  // a form or body that cannot be read
	ELogin       ErrorCode = "login"        // no session: log in first
	EForbidden   ErrorCode = "forbidden"    // the role may not use this page
	ECrossOrigin ErrorCode = "cross_origin" // a state change sent from another site
	ENotFound    ErrorCode = "not_found"
	EMethod      ErrorCode = "method" // the path exists, not for this method
	ETooLarge    ErrorCode = "too_large"
	EInternal    ErrorCode = "internal" // a fault of the appliance: logged, never shown
)

// errorKind is what a code answers: its status, and the short English text
// scanner gateways have always received on /api/ routes.
type errorKind struct {
	status int
	api    string
}

var errorKinds = map[ErrorCode]errorKind{
	EBadRequest:  {http.StatusBadRequest, "bad request"},
	ELogin:       {http.StatusUnauthorized, "login required"},
	EForbidden:   {http.StatusForbidden, "forbidden"},
	ECrossOrigin: {http.StatusForbidden, "cross-origin request refused"},
	ENotFound:    {http.StatusNotFound, "not found"},
	EMethod:      {http.StatusMethodNotAllowed, "method not allowed"},
	ETooLarge:    {http.StatusRequestEntityTooLarge, "request body too large"},
	EInternal:    {http.StatusInternalServerError, "internal error"},
}

// Error is a failure with a code and a message safe to show. Key, when set,
// is an i18n message that says more than the code's own (for example which
// record was not found); Err is the cause, for the log only.
type Error struct {
	Code ErrorCode
	Key  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Err.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// errorOf classifies err. Only an *Error or an oversized body says what
// went wrong; anything else is the appliance's own fault.
func errorOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if _, ok := errorKinds[e.Code]; ok {
			return e
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &Error{Code: ETooLarge, Err: err}
	}
	return &Error{Code: EInternal, Err: err}
}

// formError is the failure of reading a request's form: too large, or
// unreadable.
func formError(err error) *Error {
	if e := errorOf(err); e.Code == ETooLarge {
		return e
	}
	return &Error{Code: EBadRequest, Err: err}
}

// fail is the one place a failed request is answered: it maps err to its
// status, logs the appliance's own faults (and only those), and answers with
// the error page in the visitor's language, with the navigation of their
// role, or with a JSON error to scripts and scanner gateways.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	e := errorOf(err)
	switch e.Code {
	case EInternal:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case ECrossOrigin:
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "addr", remoteHost(r))
	}
	u := userFrom(r.Context())
	if u == nil && (e.Code == ECrossOrigin || !wantsJSON(r)) {
		if u = s.visitor(r); u != nil {
			r = r.WithContext(withUser(r.Context(), u))
		}
	}
	if u != nil && (e.Code == EForbidden || e.Code == ECrossOrigin) {
		s.auditRefusal(r, u, e.Code)
	}
	writeFailure(w, r, e)
}

// auditRefusal records a known user's refused request. The refusal stands
// whatever happens to its record: a failed append is logged.
func (s *Server) auditRefusal(r *http.Request, u *store.User, code ErrorCode) {
	// Path and origin are the sender's words: cut, so that the record
	// stays within the trail's size limit.
	detail := map[string]string{"method": cutText(r.Method, 16), "path": cutText(r.URL.Path, 512), "why": string(code), "addr": remoteHost(r)}
	if o := r.Header.Get("Origin"); o != "" {
		detail["origin"] = cutText(o, 256)
	}
	rec := &store.AuditRecord{Actor: u.Actor(), Action: store.AuditRequestRefused, Subject: u.Username, Detail: store.AuditDetail(detail)}
	if err := s.db.Audit(r.Context(), rec); err != nil {
		s.log.Error("audit refused request", "user", u.Username, "err", err)
	}
}

// visitor is the user of r's session for the navigation of an error page,
// looked up without extending or clearing the session: the request failed,
// and its failure must not change any state.
func (s *Server) visitor(r *http.Request) *store.User {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	_, u, err := s.db.FindSession(r.Context(), c.Value)
	if err != nil || !u.DisabledAt.IsZero() {
		return nil
	}
	return u
}

// wantsJSON reports whether r comes from a program rather than a person
// at a page: the scan API, and the pages' own scripts, which ask for JSON
// or an event stream.
func wantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") || strings.Contains(accept, "text/event-stream")
}

// writeFailure answers e. Handlers call fail; this is its last step, also
// used where a form cannot be read before any server state is at hand.
func writeFailure(w http.ResponseWriter, r *http.Request, e *Error) {
	kind := errorKinds[e.Code]
	t := i18n.FromRequest(r)
	key := "error." + string(e.Code)
	if e.Key != "" {
		key = e.Key
	}
	msg := t.T(key)
	if e.Code == ETooLarge {
		w.Header().Set("Connection", "close") // the rest of the body is not read
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		writeError(w, kind.status, kind.api)
		return
	case wantsJSON(r):
		// The gate and camera pages show it in their result panel, where
		// every message stands beside its translation.
		writeJSON(w, kind.status, map[string]string{"error": msg, "error_other": t.OtherT(key)})
		return
	}
	p := pageFor(r, "error.title."+string(e.Code))
	m := view.Failure{Status: kind.status, Code: string(e.Code), Message: msg}
	if e.Code == ELogin {
		m.Login = "/login"
		if r.Method == http.MethodGet {
			m.Login += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
	}
	var buf bytes.Buffer
	if err := view.ErrorPage(p, m).Render(r.Context(), &buf); err != nil {
		// The page cannot be drawn: the status and a plain line still
		// tell the visitor what happened.
		http.Error(w, fmt.Sprintf("%d %s", kind.status, http.StatusText(kind.status)), kind.status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(kind.status)
	_, _ = w.Write(buf.Bytes())
}

// muxErrors answers the mux's own refusals, an unknown path (404) or a
// method the path does not take (405), with the error page instead of the
// mux's plain English text. Everything else, the mux's redirects included,
// passes as the mux answers it.
func (s *Server) muxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: the mux's handler is a 404, a 405 or a redirect to
		// the cleaned path. Its answer is tiny; look at it first.
		rec := &capture{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			s.fail(w, r, &Error{Code: ENotFound})
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			s.fail(w, r, &Error{Code: EMethod})
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
		}
	})
}

// capture holds a small response to be looked at before it is sent.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// cutText returns s cut to at most n bytes, on a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
