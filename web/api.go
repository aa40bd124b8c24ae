package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"passgate/store"
)

// maxScanBody bounds a scan request. A pass is at most a few kilobytes of
// text; anything far bigger is refused before it is read.
const maxScanBody = 16 << 10

type scanRequest struct {
	Payload *string `json:"payload"`
}

// handleScan is the scanner gateway endpoint: POST /api/v1/scans with a
// device token. A payload that is not a valid pass is still a check: it is
// logged and answered 200 with a deny and its reason.
func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	dev, ok := s.authDevice(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxScanBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "could not read request body")
		return
	}
	var req scanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not valid JSON")
		return
	}
	if req.Payload == nil {
		writeError(w, http.StatusBadRequest, `request body needs a "payload" string`)
		return
	}
	d, err := s.checker.Check(r.Context(), dev.Name, *req.Payload)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// Marshal once and write the bytes: an Encoder would re-validate and
	// compact the Marshaler's output, a cost on every scan.
	out, err := d.MarshalJSON()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(out, '\n'))
}

// authDevice checks the bearer token. It answers 401 itself on failure.
func (s *Server) authDevice(w http.ResponseWriter, r *http.Request) (*store.Device, bool) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="passgate"`)
		writeError(w, http.StatusUnauthorized, "device token required")
		return nil, false
	}
	dev, err := s.devices.find(r.Context(), strings.TrimSpace(h[len(prefix):]))
	if errors.Is(err, store.ErrNotFound) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="passgate", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unknown or revoked device token")
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	return dev, true
}

// deviceCache keeps token lookups off the database on the hot path. Entries
// live for ttl, so a device revoked by another process is refused within
// ttl; unknown tokens are not cached, so a new device works at once.
type deviceCache struct {
	db  *store.DB
	ttl time.Duration
	mu  sync.Mutex
	m   map[[32]byte]cachedDevice
}

type cachedDevice struct {
	dev     *store.Device
	expires time.Time
}

func newDeviceCache(db *store.DB, ttl time.Duration) *deviceCache {
	return &deviceCache{db: db, ttl: ttl, m: make(map[[32]byte]cachedDevice)}
}

func (c *deviceCache) find(ctx context.Context, token string) (*store.Device, error) {
	if token == "" || len(token) > 256 {
		return nil, store.ErrNotFound
	}
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.dev, nil
	}
	dev, err := c.db.FindDeviceByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) > 10000 {
		clear(c.m)
	}
	c.m[key] = cachedDevice{dev: dev, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return dev, nil
}
