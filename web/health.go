package web

import (
	"context"
	"net/http"
	"time"
)

func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz answers 200 when the appliance can check and log: the
// database takes writes and trust anchors are loaded.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "keys": "ok"}
	status := http.StatusOK
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("readiness: database", "err", err)
		checks["database"] = "not writable"
		status = http.StatusServiceUnavailable
	}
	if s.checker.Roots() == 0 {
		checks["keys"] = "no trusted root key loaded"
		status = http.StatusServiceUnavailable
	}
	body := map[string]any{
		"status":          map[bool]string{true: "ok", false: "unavailable"}[status == http.StatusOK],
		"checks":          checks,
		"lists_loaded_at": s.checker.ListsLoadedAt().UTC(),
	}
	writeJSON(w, status, body)
}
