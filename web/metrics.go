package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"passgate/metrics"
)

// Bounds on the metrics token: long enough that it cannot be guessed over
// the LAN, short enough that a header never costs much to check.
const (
	MinMetricsToken = 16
	MaxMetricsToken = 256
)

// MetricsAccess says which scrapers may read GET /metrics without an admin
// session. An admin's browser session is always accepted; anyone else on
// the LAN is refused (401), because the counters tell how busy each gate
// is and the process metrics describe the appliance.
type MetricsAccess struct {
	// Token, when not empty, is accepted as "Authorization: Bearer
	// <Token>" from any address: a Prometheus server elsewhere on the LAN
	// (bearer_token_file). Its length must be within MinMetricsToken and
	// MaxMetricsToken, or it is ignored.
	Token string
	// Loopback accepts clients connecting from the appliance itself (an
	// agent running next to it), unless the request carries a forwarding
	// header: then a proxy on the appliance relays someone else.
	Loopback bool
}

// setMetrics serves m at GET /metrics to the scrapers a allows and to
// admins; a token of a length out of bounds is ignored.
func (s *Server) setMetrics(m *metrics.Metrics, a MetricsAccess) {
	s.metrics = m
	s.metricsAccess = a
	if n := len(a.Token); n < MinMetricsToken || n > MaxMetricsToken {
		s.metricsAccess.Token = ""
	}
}

// handleMetrics serves the Prometheus exposition.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.metrics.Handler().ServeHTTP(w, r)
}

// guardMonitor lets a trusted scraper through (see MetricsAccess), then
// falls back to an admin session. A machine client cannot follow the
// login redirect, so an anonymous request is answered 401 with a Bearer
// challenge, and a wrong token is refused even from loopback: it is a
// misconfigured scraper that should find out.
func (s *Server) guardMonitor(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.metricsAccess.scraper(r) {
		case scraperTrusted:
			h(w, r)
			return
		case scraperBadToken:
			w.Header().Set("WWW-Authenticate", `Bearer realm="passgate metrics", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong metrics token")
			return
		}
		u, err := s.sessionUser(w, r)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		if u == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="passgate metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics token or admin login required")
			return
		}
		if !allowed(Admin, u.Role) {
			s.fail(w, r.WithContext(withUser(r.Context(), u)), &Error{Code: EForbidden})
			return
		}
		h(w, r.WithContext(withUser(r.Context(), u)))
	})
}

// scraperVerdict is what a request's address and token say about it.
type scraperVerdict int

const (
	scraperUnknown  scraperVerdict = iota // neither: try the session
	scraperTrusted                        // loopback or the right token
	scraperBadToken                       // a token that is not the metrics token
)

// scraper judges r by its Authorization header and address.
func (a MetricsAccess) scraper(r *http.Request) scraperVerdict {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := bearerToken(h)
		if !ok || a.Token == "" {
			return scraperBadToken
		}
		// Hash both sides so the comparison takes the same time whatever
		// the length of the guess.
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(a.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return scraperBadToken
		}
		return scraperTrusted
	}
	if a.Loopback && isLoopback(r.RemoteAddr) && !forwarded(r) {
		return scraperTrusted
	}
	return scraperUnknown
}

// bearerToken extracts the token of an "Authorization: Bearer ..."
// header, refusing other schemes and oversized values.
func bearerToken(h string) (string, bool) {
	const prefix = "Bearer "
	if len(h) > len(prefix)+MaxMetricsToken+8 || len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" || len(tok) > MaxMetricsToken {
		return "", false
	}
	return tok, true
}

// isLoopback reports whether addr (host:port, as in Request.RemoteAddr) is
// a loopback address, IPv4-mapped IPv6 included.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// forwarded reports whether r says it was relayed by a proxy.
func forwarded(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	return false
}
