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
	handler http.HandlerFunc
}

// tableRoute is a route as the table holds it, with where it is served.
type tableRoute struct {
	route
	// onGate: the route is served on a gate too. Deny by default: a
	// route is absent on a gate (404) unless its area is listed for
	// gates in routeTable. A gate holds no pseudonym key and registers,
	// issues, changes and traces nothing.
	onGate bool
}

// RouteInfo describes a route for tests and documentation.
type RouteInfo struct {
	Pattern string
	Access  Access
	OnGate  bool // served on a gate too
}

// routeTable is every route of the appliance. Each area keeps its routes
// in its own file; this is the one list they all join, and the one place
// that says which areas a gate serves.
func (s *Server) routeTable() []tableRoute {
	base := []route{
		{"GET /livez", Public, s.handleLivez},
		{"GET /readyz", Public, s.handleReadyz},
		{"GET /metrics", Monitor, s.handleMetrics},
		{"GET /assets/", Public, assetsHandler},
		{"POST /api/v1/scans", Device, s.handleScan},
		{"GET /{$}", Staff, s.handleHome},
	}
	onGate := [][]route{base, s.authRoutes(), s.gateRoutes(), s.cameraRoutes(), s.adminRoutes(), s.inputRoutes(),
		s.applianceRoutes(), s.caRoutes(), s.exportRoutes(), s.trustRoutes(), s.dashboardRoutes(), s.auditRoutes()}
	// Registering, issuing, status changes, imports and traces by ID
	// number: offices and the hub only.
	officeOnly := [][]route{s.deskRoutes(), s.traceRoutes()}
	var rs []tableRoute
	for _, area := range onGate {
		for _, r := range area {
			rs = append(rs, tableRoute{r, true})
		}
	}
	for _, area := range officeOnly {
		for _, r := range area {
			rs = append(rs, tableRoute{r, false})
		}
	}
	return rs
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
