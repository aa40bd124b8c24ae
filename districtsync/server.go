package districtsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passgate/store"
)

// Server answers the sync API on a hub: enrolment, pushes of appliances'
// records and pulls of the feed. Mount Handler on the hub's HTTPS
// listener; it serves the paths under /sync/v1/ only.
type Server struct {
	db    *store.DB
	log   *slog.Logger
	hubCA []byte // DER certificate the hub's TLS chain ends in; nil: no enrolment
	// pushBody: how long a push's body may take (zero: the defaults).
	pushBody pushBodyLimits

	trust        trustCache
	answers      answerCache
	watch        *feedWatch
	contacts     contactBook
	contactEvery time.Duration
	pollWait     time.Duration
	running      atomic.Bool   // Run serves long polls and batches contacts
	draining     chan struct{} // closed by Drain
	drainOnce    sync.Once
}

// ServerConfig is what a Server is built from. DB is required.
type ServerConfig struct {
	DB *store.DB
	// Log receives the API's log; nil discards it.
	Log *slog.Logger
	// HubCA is the DER certificate the hub's TLS chain ends in (the local
	// CA's, or a provided leaf): enrolment answers carry it, and
	// appliances pin it. Without it enrolment is refused.
	HubCA []byte
}

// NewServer makes the hub's sync API from cfg.
func NewServer(cfg ServerConfig) *Server {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{db: cfg.DB, log: log, hubCA: bytes.Clone(cfg.HubCA), watch: newFeedWatch(), contactEvery: contactFlushEvery,
		pollWait: PollWait, draining: make(chan struct{})}
}

// Drain answers every waiting pull now and lets no new one wait: call it
// when the HTTP server shuts down (http.Server.RegisterOnShutdown), which
// otherwise waits for the long polls to end.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Handler routes the sync paths. Every path takes POST only.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathEnrol, s.handleEnrol)
	mux.HandleFunc("POST "+PathPull, s.handlePull)
	mux.HandleFunc("POST "+PathPush, s.handlePush)
	mux.HandleFunc("POST "+PathRestore, s.handleRestore)
	return mux
}

// Error answers for the token check.
var (
	errUnauthorized = &CallError{Status: http.StatusUnauthorized, Err: Error{Code: "unauthorized", Message: "missing or unknown sync token"}}
	errRetired      = &CallError{Status: http.StatusForbidden, Err: Error{Code: "retired", Message: "this appliance was retired by the hub"}}
)

// tokenSize is the length of a bearer token.
const tokenSize = 32

func encodeToken(t []byte) string { return base64.RawURLEncoding.EncodeToString(t) }

// TokenHash is what the hub stores of a bearer token.
func TokenHash(token []byte) []byte {
	h := sha256.Sum256(token)
	return h[:]
}

// appliance authenticates the request's bearer token and returns the
// enrolled appliance it belongs to. The error is a *CallError to answer
// with (401 unknown, 403 retired) or an internal error.
func (s *Server) appliance(r *http.Request) (*store.Appliance, error) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || len(h) > len(prefix)+64 || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, errUnauthorized
	}
	tok, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil || len(tok) != tokenSize {
		return nil, errUnauthorized
	}
	a, err := s.db.ApplianceByToken(r.Context(), TokenHash(tok))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errUnauthorized
	case errors.Is(err, store.ErrRetired):
		return nil, errRetired
	case err != nil:
		return nil, err
	}
	return a, nil
}

// applianceRequest starts every call an enrolled appliance makes: who
// it is (refused unless enrolled and not retired), then, only once it is
// known, its request read within the body's bounds into req.
func (s *Server) applianceRequest(r *http.Request, req any) (*store.Appliance, error) {
	a, err := s.appliance(r)
	if err != nil {
		return nil, err
	}
	if err := readRequest(r, req); err != nil {
		return nil, err
	}
	return a, nil
}

// readRequest decodes a request body (gzip or plain JSON, bounded).
func readRequest(r *http.Request, v any) error {
	if err := readBody(r.Body, r.Header.Get("Content-Encoding"), v); err != nil {
		return readRequestError(err)
	}
	return nil
}

// readRequestError is the answer to a body readBody refused.
func readRequestError(err error) error {
	if errors.Is(err, errTooLarge) {
		return &CallError{Status: http.StatusRequestEntityTooLarge, Err: Error{Code: "too_large", Message: "request body too large"}}
	}
	return &CallError{Status: http.StatusBadRequest, Err: Error{Code: "bad_request", Message: "malformed request: " + err.Error()}}
}

// writeJSON answers v as JSON, gzip-compressed when the client accepts it
// (every passgate does; large feed answers shrink several-fold).
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	gz := strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
	if gz {
		_ = encodeGzip(&buf, v)
		w.Header().Set("Content-Encoding", "gzip")
	} else {
		_ = json.NewEncoder(&buf).Encode(v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers err: a *CallError as it says, anything else as a
// 500 whose detail stays in the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *CallError
	if !errors.As(err, &ce) {
		s.log.Error("sync api", "path", r.URL.Path, "err", err)
		ce = &CallError{Status: http.StatusInternalServerError, Err: Error{Code: "internal", Message: "internal error at the hub"}}
	}
	s.writeJSON(w, r, ce.Status, ce.Err)
}
