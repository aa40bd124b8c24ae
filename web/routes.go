package web

import (
	"net/http"
	"net/url"
	"sort"

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
	return [...]string{"public", "device", "staff", "issuer", "admin", "monitor"}[a]
}

// route is one entry of the route table.
type route struct {
	pattern string // Go 1.22 pattern with method: "GET /gate"
	access  Access
	handler http.HandlerFunc
}

// RouteInfo describes a route for tests and documentation.
type RouteInfo struct {
	Pattern string
	Access  Access
}

// routeTable is every route of the appliance. Each area keeps its routes
// in its own file; this is the one list they all join.
func (s *Server) routeTable() []route {
	rs := []route{
		{"GET /livez", Public, s.handleLivez},
		{"GET /readyz", Public, s.handleReadyz},
		{"GET /metrics", Monitor, s.handleMetrics},
		{"GET /assets/", Public, assetsHandler},
		{"POST /api/v1/scans", Device, s.handleScan},
		{"GET /{$}", Staff, s.handleHome},
	}
	rs = append(rs, s.authRoutes()...)
	rs = append(rs, s.gateRoutes()...)
	rs = append(rs, s.cameraRoutes()...)
	rs = append(rs, s.deskRoutes()...)
	rs = append(rs, s.adminRoutes()...)
	rs = append(rs, s.inputRoutes()...)
	rs = append(rs, s.applianceRoutes()...)
	rs = append(rs, s.caRoutes()...)
	rs = append(rs, s.exportRoutes()...)
	rs = append(rs, s.traceRoutes()...)
	return rs
}

// Routes lists every route with its access level, sorted by pattern.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.routeTable() {
		out = append(out, RouteInfo{r.pattern, r.access})
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
func allowed(a Access, role string) bool {
	switch a {
	case Staff:
		return role == store.UserStaff || role == store.UserIssuer || role == store.UserAdmin
	case Issuer:
		return role == store.UserIssuer || role == store.UserAdmin
	case Admin:
		return role == store.UserAdmin
	}
	return true
}
