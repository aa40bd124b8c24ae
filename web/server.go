// Package web serves passgate over HTTP: the scan API for scanner gateways,
// health endpoints and the pages. Handlers are methods on one small struct;
// every route is listed in routes().
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"passgate/assets"
	"passgate/scanner"
	"passgate/store"
)

// Version is the build's version, set by main.
var Version = "dev"

// Server holds what the handlers need.
type Server struct {
	db      *store.DB
	checker *scanner.Checker
	log     *slog.Logger
	started time.Time
	devices *deviceCache
}

// New returns a Server.
func New(db *store.DB, checker *scanner.Checker, log *slog.Logger) *Server {
	return &Server{
		db: db, checker: checker, log: log, started: time.Now(),
		devices: newDeviceCache(db, 30*time.Second),
	}
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	return s.recoverer(mux)
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /livez", s.handleLivez)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("POST /api/v1/scans", s.handleScan)
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.Handle("GET /assets/", assets.Handler("/assets/"))
}

// recoverer turns a handler panic into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes a JSON error with a message safe to show.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// internalError logs err and answers 500 with nothing of it.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}
