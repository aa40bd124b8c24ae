// Package web serves passgate over HTTP: the scan API for scanner gateways,
// health endpoints and the pages. Handlers are methods on one small struct;
// every route is listed in routeTable().
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"passgate/assets"
	"passgate/check"
	"passgate/metrics"
	"passgate/scanner"
	"passgate/store"
	"passgate/web/i18n"
)

// Version is the build's version, set by main.
var Version = "dev"

// Server holds what the handlers need.
type Server struct {
	db      *store.DB
	checker *check.Checker
	log     *slog.Logger
	started time.Time
	devices *deviceCache
	auth    *authState
	events  *eventHub
	inputs  *scanner.Inputs
	exports *exportJobs
	// hubIdentity is the certificate enrolment codes pin (WithHubIdentity).
	hubIdentity []byte
	// auditCheckpoints is the signed checkpoint file (WithAuditCheckpoints).
	auditCheckpoints string

	inputCfg inputConfig

	// entrances maps a scan source to the entrance an admin assigned it
	// to; loaded on first use and after every change.
	entrances     atomic.Pointer[map[string]string]
	entrancesOnce sync.Once
	// gateCheckDelay, when set, runs before each gate screen check and
	// camera frame: tests make the network slow with it.
	gateCheckDelay func(context.Context)

	metrics       *metrics.Metrics // nil: GET /metrics answers 404
	metricsAccess MetricsAccess
}

// Option configures a Server.
type Option func(*Server)

// WithInputs shows the state of the appliance's own scanner inputs
// (serial, evdev) on the status page, the gate screen and /readyz.
func WithInputs(in *scanner.Inputs) Option { return func(s *Server) { s.inputs = in } }

// New returns a Server.
func New(db *store.DB, checker *check.Checker, log *slog.Logger, opts ...Option) *Server {
	s := &Server{
		db: db, checker: checker, log: log, started: time.Now(),
		devices: newDeviceCache(db, 30*time.Second),
		auth:    newAuthState(),
		events:  newEventHub(),
		inputs:  scanner.NewInputs(),
		exports: newExportJobs(db, log),
	}
	for _, o := range opts {
		o(s)
	}
	s.exports.onDone = s.metrics.ExportDone
	return s
}

// Handler returns the routes, behind cross-origin protection for every
// state-changing request (browsers mark cross-site requests with
// Sec-Fetch-Site and Origin; scanner gateways send neither and pass).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		h := s.guard(rt.access, rt.handler)
		if !rt.onGate {
			h = s.notOnGate(h)
		}
		mux.Handle(rt.pattern, h)
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &Error{Code: ECrossOrigin})
	}))
	return s.recoverer(securityHeaders(cop.Handler(s.muxErrors(mux))))
}

var assetsHandler = assets.Handler("/assets/").ServeHTTP

// securityHeaders sets the headers every response carries: no framing, no
// MIME sniffing, no referrer leaking paths, and a content policy that
// allows only the appliance's own scripts and styles (no inline script).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a handler panic into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.fail(w, r, fmt.Errorf("handler panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes a JSON error with a message safe to show.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writePanelError answers a gate or camera check that could not be made
// with its message in the page's language ("error") and in the other
// ("error_other"): the result panel shows both, as it does a decision.
func writePanelError(w http.ResponseWriter, status int, t i18n.Printer, key string) {
	writeJSON(w, status, map[string]string{"error": t.T(key), "error_other": t.OtherT(key)})
}

// internalError answers a failed request through fail: an unexpected
// error is logged and answered 500 with nothing of it.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.fail(w, r, err)
}
