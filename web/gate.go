package web

// eventHub fans decisions out to the live gate screens.
type eventHub struct{}

func newEventHub() *eventHub { return &eventHub{} }

func (s *Server) gateRoutes() []route { return nil }
