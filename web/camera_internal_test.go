package web

import (
	"net/http"
	"strings"
)

// HandlerWithCamera is Handler with the camera routes mounted, for the
// camera tests in package web_test. Once routeTable lists cameraRoutes it
// is Handler itself.
func (s *Server) HandlerWithCamera() http.Handler {
	for _, rt := range s.routeTable() {
		if strings.HasSuffix(rt.pattern, " /gate/camera") {
			return s.Handler()
		}
	}
	mux := http.NewServeMux()
	for _, rt := range append(s.routeTable(), s.cameraRoutes()...) {
		mux.Handle(rt.pattern, s.guard(rt.access, rt.handler))
	}
	cop := http.NewCrossOriginProtection()
	return s.recoverer(securityHeaders(cop.Handler(mux)))
}
