package web

import (
	"net/http"

	"passgate/store"
)

// authState holds login throttling and session settings.
type authState struct{}

func newAuthState() *authState { return &authState{} }

// sessionUser returns the user of the request's session cookie, or nil
// for an anonymous request.
func (s *Server) sessionUser(w http.ResponseWriter, r *http.Request) (*store.User, error) {
	return nil, nil
}

func (s *Server) authRoutes() []route { return nil }
