package web

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"passgate/store"
)

// Access is who may use a route.
type Access int

// Access levels, each including the ones above it from Staff on: an
// issuer may do what staff may, an admin everything.
const (
	Public Access = iota // anyone
	Device               // a scanner with a device token (checked by the handler)
	Staff                // a logged-in user of any role
	Issuer               // issuer or admin
	Admin                // admin only
	// Monitor is a metrics scraper: a trusted loopback client or the
	// metrics token (see MetricsAccess), or else an admin's session. It
	// stands outside the role ranking: no other role reaches it.
	Monitor
)

func (a Access) String() string {
	names := [...]string{"public", "device", "staff", "issuer", "admin", "monitor"}
	if a < 0 || int(a) >= len(names) {
		return "access(" + strconv.Itoa(int(a)) + ")"
	}
	return names[a]
}

// route is one entry of the route table.
type route struct {
	pattern string // Go 1.22 pattern with method: "GET /gate"
	access  Access
	onGate  bool // served on a gate too (anywhere), or not (officeOnly)
	handler http.HandlerFunc
}

// Where a route is served.
const (
	anywhere   = true  // gates, offices and the hub
	officeOnly = false // offices and the hub; absent on a gate
)

// RouteInfo describes a route for tests and documentation.
type RouteInfo struct {
	Pattern string
	Access  Access
	OnGate  bool // served on a gate too
}

// routeTable is every route of the appliance, with who may use it and
// where it is served. Deny by default: a route absent here is a 404, and
// a route for offices only is a 404 on a gate, which holds no pseudonym
// key and registers, issues, changes and traces nothing.
func (s *Server) routeTable() []route {
	return []route{
		{"GET /livez", Public, anywhere, s.handleLivez},
		{"GET /readyz", Public, anywhere, s.handleReadyz},
		{"GET /metrics", Monitor, anywhere, s.handleMetrics},
		{"GET /assets/", Public, anywhere, assetsHandler},
		{"POST /api/v1/scans", Device, anywhere, s.handleScan},
		{"GET /{$}", Staff, anywhere, s.handleHome},
		// Signing in and the language of the pages.
		{"GET /login", Public, anywhere, s.handleLoginForm},
		{"POST /login", Public, anywhere, s.handleLogin},
		{"POST /logout", Staff, anywhere, s.handleLogout},
		{"POST /lang", Public, anywhere, s.handleLang},
		// The gate screen and its live feed of this entrance's checks.
		{"GET /gate", Staff, anywhere, s.handleGate},
		{"POST /gate/check", Staff, anywhere, s.handleGateCheck},
		{"GET /gate/events", Staff, anywhere, s.handleGateEvents},
		// A tablet's camera as a scanner.
		{"GET /gate/camera", Staff, anywhere, s.handleCamera},
		{"POST /gate/camera/frame", Staff, anywhere, s.handleCameraFrame},
		// Accounts, scanner devices, the check policy, the status page. Row actions
		// are POSTs to their own paths so that each has one clear effect.
		{"GET /admin", Admin, anywhere, s.handleAdmin},
		{"GET /admin/status", Admin, anywhere, s.handleStatus},
		{"GET /admin/users", Admin, anywhere, s.handleUsers},
		{"POST /admin/users", Admin, anywhere, s.handleCreateUser},
		{"POST /admin/users/{id}/disable", Admin, anywhere, s.handleDisableUser},
		{"POST /admin/users/{id}/enable", Admin, anywhere, s.handleEnableUser},
		{"POST /admin/users/{id}/role", Admin, anywhere, s.handleUserRole},
		{"POST /admin/users/{id}/password", Admin, anywhere, s.handleResetPassword},
		{"GET /admin/devices", Admin, anywhere, s.handleDevices},
		{"POST /admin/devices", Admin, anywhere, s.handleCreateDevice},
		{"POST /admin/devices/revoke", Admin, anywhere, s.handleRevokeDevice},
		{"GET /admin/policy", Admin, anywhere, s.handlePolicy},
		{"POST /admin/policy", Admin, anywhere, s.handleSavePolicy},
		// The dashboard's charts alone, for the page's periodic refresh.
		// The charts alone, for the page's periodic refresh.
		{"GET /admin/dashboard", Admin, anywhere, s.handleDashboardPanel},
		// Serial and evdev scanners and the entrance each feeds.
		{"GET /admin/inputs", Admin, anywhere, s.handleInputs},
		{"POST /admin/inputs", Admin, anywhere, s.handleAddInput},
		{"POST /admin/inputs/delete", Admin, anywhere, s.handleRemoveInput},
		{"POST /admin/inputs/entrance", Admin, anywhere, s.handleSetEntrance},
		{"POST /admin/inputs/hold", Admin, anywhere, s.handleSetGateHold},
		// The hub's registry of appliances (a page that says so elsewhere).
		{"GET /admin/appliances", Admin, anywhere, s.handleAppliances},
		{"POST /admin/appliances", Admin, anywhere, s.handleAddAppliance},
		{"POST /admin/appliances/retire", Admin, anywhere, s.handleRetireAppliance},
		{"POST /admin/appliances/drain", Admin, anywhere, s.handleDrainAppliance},
		// The local CA certificate an admin installs on tablets for the camera's
		// HTTPS: not secret, but trust anchors come from the person who set up
		// the gate.
		{"GET /admin/ca", Admin, anywhere, s.handleCAHelp},
		{"GET /admin/ca.crt", Admin, anywhere, s.handleCACert},
		{"GET /admin/ca.pem", Admin, anywhere, s.handleCAPEM},
		// Data exports, run as jobs.
		{"GET /admin/export", Admin, anywhere, s.handleExportForm},
		{"POST /admin/export", Admin, anywhere, s.handleExport},
		{"GET /admin/export/jobs/{id}", Admin, anywhere, s.handleExportJob},
		{"GET /admin/export/jobs/{id}/status", Admin, anywhere, s.handleExportJobStatus},
		{"POST /admin/export/jobs/{id}/cancel", Admin, anywhere, s.handleExportJobCancel},
		{"GET /admin/export/jobs/{id}/file", Admin, anywhere, s.handleExportJobFile},
		// Trust between districts: the roots held here, this district's anchor
		// file, the import of another's after its fingerprint was compared.
		{"GET /admin/trust", Admin, anywhere, s.handleTrust},
		{"GET /admin/trust/anchor", Admin, anywhere, s.handleTrustAnchor},
		{"POST /admin/trust/check", Admin, anywhere, s.handleTrustCheck},
		{"POST /admin/trust/import", Admin, anywhere, s.handleTrustImport},
		// The audit trail: reading and verifying it (verifying writes nothing).
		{"GET /admin/audit", Admin, anywhere, s.handleAudit},
		{"POST /admin/audit/verify", Admin, anywhere, s.handleAuditVerify},
		// The issuing desk: residents, tests, doses, status, passes, bulk import
		// and print. A resident is addressed by the hex pseudonym, never the ID
		// number, which stays out of URLs, logs and history.
		{"GET /desk", Issuer, officeOnly, s.handleDesk},
		{"POST /desk/find", Issuer, officeOnly, s.handleDeskFind},
		{"POST /desk/people", Issuer, officeOnly, s.handleDeskRegister},
		{"GET /desk/people/{subject}", Issuer, officeOnly, s.handleDeskPerson},
		{"POST /desk/people/{subject}/test", Issuer, officeOnly, s.handleDeskTest},
		{"POST /desk/people/{subject}/doses", Issuer, officeOnly, s.handleDeskDoses},
		{"POST /desk/people/{subject}/status", Issuer, officeOnly, s.handleDeskStatus},
		{"POST /desk/people/{subject}/pass", Issuer, officeOnly, s.handleDeskPass},
		{"GET /desk/import", Issuer, officeOnly, s.handleImportForm},
		{"POST /desk/import", Issuer, officeOnly, s.handleImport},
		{"POST /desk/print", Issuer, officeOnly, s.handleBulkPrint},
		// Contact tracing: the ID number travels only in a request body.
		{"GET /admin/city", Admin, officeOnly, s.handleCityForm},
		{"POST /admin/city/trace", Admin, officeOnly, s.handleCityTrace},
		{"GET /admin/city/dashboard", Admin, officeOnly, s.handleCityDashboard},
		{"GET /admin/city/status", Admin, officeOnly, s.handleCityStatusForm},
		{"POST /admin/city/status", Admin, officeOnly, s.handleCityStatus},
		{"GET /admin/trace", Admin, officeOnly, s.handleTraceForm},
		{"POST /admin/trace", Admin, officeOnly, s.handleTrace},
		{"POST /admin/trace/download", Admin, officeOnly, s.handleTraceDownload},
		{"GET /admin/trace/{token}", Admin, officeOnly, s.handleTraceShow},
		{"POST /admin/trace/{token}/act", Admin, officeOnly, s.handleTraceAct},
		{"GET /admin/trace/{token}/person/{subject}", Admin, officeOnly, s.handleTracePerson},
		{"POST /admin/trace/{token}/person/{subject}/phone", Admin, officeOnly, s.handleTracePhone},
	}
}

// notOnGate answers 404 on a gate: the page is absent there. The role
// is read per request, since a gate learns it from its hub while it
// runs; only the routes for offices pay for the lookup.
func (s *Server) notOnGate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gate, err := s.db.IsGate(r.Context())
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		if gate {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Routes lists every route with its access level, sorted by pattern.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.routeTable() {
		out = append(out, RouteInfo{r.pattern, r.access, r.onGate})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// guard enforces access: anonymous visitors of a protected page are sent
// to the login page (and back afterwards), users without the role get 403.
func (s *Server) guard(a Access, h http.HandlerFunc) http.Handler {
	if a == Public || a == Device {
		return h
	}
	if a == Monitor {
		return s.guardMonitor(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.sessionUser(w, r)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		if u == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, &Error{Code: ELogin})
			return
		}
		if !allowed(a, u.Role) {
			// The refusal page keeps the user's own navigation.
			s.fail(w, r.WithContext(withUser(r.Context(), u)), &Error{Code: EForbidden})
			return
		}
		h(w, r.WithContext(withUser(r.Context(), u)))
	})
}

// allowed reports whether a user with role may use a route of access a.
// Staff, Issuer and Admin follow the order of store.UserRoles. Public,
// Device and Monitor routes are not decided by the user's role (the device
// token and the metrics guard decide them), so a role never bars them. An
// access level this switch does not know is refused: a route added with a
// new level stays closed until someone says who may use it.
func allowed(a Access, role store.UserRole) bool {
	switch a {
	case Public, Device, Monitor:
		return true
	case Staff:
		return store.RoleRank(role) >= store.RoleRank(store.UserStaff)
	case Issuer:
		return store.RoleRank(role) >= store.RoleRank(store.UserIssuer)
	case Admin:
		return store.RoleRank(role) >= store.RoleRank(store.UserAdmin)
	default:
		return false
	}
}
