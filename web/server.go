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
	"path/filepath"
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
	// auditCheckpoints is the signed checkpoint file (Config.AuditCheckpoints).
	auditCheckpoints string

	inputCfg inputConfig

	// traceLimit caps trace results below store.MaxTraceRows (tests).
	traceLimit int
	// dashRefresh is how often an open dashboard refreshes itself.
	dashRefresh time.Duration
	traces      traceGrants
	// city is the link to the city tier (Config.City); nil: none.
	city *CityConsole

	// entrances maps a scan source to the entrance an admin assigned it
	// to; loaded on first use and after every change.
	entrances     atomic.Pointer[map[string]string]
	entrancesOnce sync.Once
	// gateCheckDelay, when set, runs before each gate screen check and
	// camera frame: tests make the network slow with it.
	gateCheckDelay func(context.Context)

	metrics       *metrics.Metrics // nil: GET /metrics answers 404
	metricsAccess MetricsAccess
	version       string
}

// Config is what a Server is built from. DB, Checker and Log are
// required; the rest may be left zero.
type Config struct {
	DB      *store.DB
	Checker *check.Checker
	Log     *slog.Logger
	// Version is the build's version, shown on the home page.
	Version string
	// Inputs shows the state of the appliance's own scanner inputs
	// (serial, evdev) on the status page, the gate screen and /readyz.
	Inputs *scanner.Inputs
	// InputsFromFlags are the inputs configured on the command line,
	// ValidateInput checks a new one (nil: only the basic checks), and
	// InputsChanged is told when an admin changed them (the input
	// manager, which applies the change at once; nil: nobody).
	InputsFromFlags []scanner.InputSpec
	ValidateInput   func(scanner.InputSpec) error
	InputsChanged   func()
	// Metrics is served at GET /metrics to the scrapers MetricsAccess
	// allows and to admins, and counts exports; nil: /metrics answers
	// 404.
	Metrics       *metrics.Metrics
	MetricsAccess MetricsAccess
	// ExportDir makes background exports write their files in a
	// directory of it (the appliance's data directory, so a large
	// workbook does not fill a RAM-backed /tmp). That directory is the
	// server's alone: files left there by a previous run that did not
	// shut down cleanly are removed on first use. Empty: a temporary
	// directory.
	ExportDir string
	// HubIdentity is the DER certificate appliances pin when they enrol
	// with this appliance as their hub: the local CA, or the leaf of a
	// provided certificate. Without it (no HTTPS), the hub cannot hand
	// out enrolment codes: appliances reach it only over HTTPS.
	HubIdentity []byte
	// CAPEM is the local CA certificate admins download for the tablets
	// (see SetCA); nil: none.
	CAPEM []byte
	// City links the city health commission's console to the district
	// hubs (GET /admin/city); nil: the page says it is not joined.
	City *CityConsole
	// TraceLimit caps each part of a trace at this many rows instead of
	// store.MaxTraceRows, so that tests can cut a trace without writing
	// ten thousand scans; 0: store.MaxTraceRows.
	TraceLimit int
	// DashboardRefresh is how often an open dashboard (the admin's and
	// the city console's) fetches itself again, so that tests need not
	// wait the half minute; 0 or less: 30 s.
	DashboardRefresh time.Duration
	// AuditCheckpoints names the file of the appliance's signed audit
	// checkpoints, against whose newest the audit page verifies the trail;
	// empty: the page verifies the chain alone.
	AuditCheckpoints string
}

// New returns a Server built from cfg.
func New(cfg Config) *Server {
	s := &Server{
		db: cfg.DB, checker: cfg.Checker, log: cfg.Log, started: time.Now(),
		devices:          newDeviceCache(cfg.DB, deviceCacheTTL),
		auth:             newAuthState(),
		events:           newEventHub(),
		inputs:           cfg.Inputs,
		exports:          newExportJobs(cfg.DB, cfg.Log),
		hubIdentity:      cfg.HubIdentity,
		inputCfg:         inputConfig{cfg.InputsFromFlags, cfg.ValidateInput, cfg.InputsChanged},
		version:          cfg.Version,
		traceLimit:       cfg.TraceLimit,
		dashRefresh:      dashRefresh,
		city:             cfg.City,
		auditCheckpoints: cfg.AuditCheckpoints,
	}
	if s.inputs == nil {
		s.inputs = scanner.NewInputs()
	}
	if s.version == "" {
		s.version = "dev"
	}
	if cfg.DashboardRefresh > 0 {
		s.dashRefresh = cfg.DashboardRefresh
	}
	if cfg.ExportDir != "" {
		s.exports.base, s.exports.owned = filepath.Join(cfg.ExportDir, "exports"), true
	}
	s.setMetrics(cfg.Metrics, cfg.MetricsAccess)
	if cfg.CAPEM != nil {
		s.SetCA(cfg.CAPEM)
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
// The values are shared by every response rather than built per request:
// Header.Set and Add replace or copy a slice, never write into it, and
// each has its capacity cut to its length so that an append copies.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = noSniff
		h["X-Frame-Options"] = frameDeny
		h["Referrer-Policy"] = noReferrer
		h["Content-Security-Policy"] = contentPolicy
		next.ServeHTTP(w, r)
	})
}

// Header values set on every response, or on every JSON answer.
var (
	noSniff         = headerValue("nosniff")
	frameDeny       = headerValue("DENY")
	noReferrer      = headerValue("no-referrer")
	contentPolicy   = headerValue("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	jsonContentType = headerValue("application/json; charset=utf-8")
	noStore         = headerValue("no-store")
)

// headerValue is a header's one value, its capacity cut to its length.
func headerValue(v string) []string { return []string{v}[:1:1] }

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
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
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
