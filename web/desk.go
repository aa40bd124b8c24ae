package web

func (s *Server) deskRoutes() []route { return nil }
