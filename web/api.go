package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
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

// scanBufs holds the buffers a scan request is read into and its answer
// written from, so that a busy scan API does not allocate them per scan.
var scanBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Refusals of a scan request's body, answered 400 or 413.
var (
	errScanTooBig    = errors.New("request body too large")
	errScanUnread    = errors.New("could not read request body")
	errScanNotJSON   = errors.New("request body is not valid JSON")
	errScanNoPayload = errors.New(`request body needs a "payload" string`)
)

// handleScan is the scanner gateway endpoint: POST /api/v1/scans with a
// device token. A payload that is not a valid pass is still a check: it is
// logged and answered 200 with a deny and its reason.
func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	dev, ok := s.authDevice(w, r)
	if !ok {
		return
	}
	bp := scanBufs.Get().(*[]byte)
	defer scanBufs.Put(bp)
	body, err := readScanBody(w, r, (*bp)[:0])
	if body != nil {
		*bp = body[:0] // keep a buffer that grew
	}
	if err != nil {
		status := http.StatusBadRequest
		if err == errScanTooBig {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, err.Error())
		return
	}
	payload, err := scanPayload(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := s.checker.Check(r.Context(), dev.Name, payload)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out, err := d.AppendJSON(body[:0])
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	*bp = out[:0]
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	// Write copies the answer into the connection's buffer: the pooled
	// buffer is free again when it returns.
	_, _ = w.Write(append(out, '\n'))
}

// readScanBody reads the request body onto buf, at most maxScanBody bytes.
// A body of announced length is read straight into buf; one without, or
// announced too long, goes through http.MaxBytesReader, which also stops
// the server from reading the rest of an oversized body.
func readScanBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > maxScanBody {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxScanBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, errScanTooBig
		case err != nil:
			return nil, errScanUnread
		}
		return b, nil
	}
	// One byte more than announced, so that the read that meets the end
	// of the body needs no second buffer.
	buf = slices.Grow(buf[:0], int(n)+1)
	for {
		m, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, errScanUnread
		}
		if len(buf) > maxScanBody {
			return buf, errScanTooBig
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 512)
		}
	}
}

// scanPayload returns the payload of a scan request's body. The body a
// scanner sends, {"payload":"<printable ASCII>"}, is read without the
// reflection of encoding/json; anything else (escapes, other bytes, other
// keys, duplicate keys) goes to encoding/json, which decides as before.
func scanPayload(body []byte) (string, error) {
	if p, ok := plainPayload(body); ok {
		return p, nil
	}
	var req scanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", errScanNotJSON
	}
	if req.Payload == nil {
		return "", errScanNoPayload
	}
	return *req.Payload, nil
}

// plainPayload reads a body that is exactly one object with the one key
// "payload" and a string value of printable ASCII without escapes,
// allowing JSON whitespace between the tokens. For such a body
// encoding/json would give the same string; ok is false for any other.
func plainPayload(b []byte) (p string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipSpace(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(`"payload"`)) {
		return "", false
	}
	i = skipSpace(b, i+len(`"payload"`))
	if i >= len(b) || b[i] != ':' {
		return "", false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] != '"' {
		return "", false
	}
	start := i + 1
	end := start
	for end < len(b) && b[end] >= 0x20 && b[end] < 0x80 && b[end] != '"' && b[end] != '\\' {
		end++
	}
	if end >= len(b) || b[end] != '"' {
		return "", false
	}
	i = skipSpace(b, end+1)
	if i >= len(b) || b[i] != '}' {
		return "", false
	}
	if skipSpace(b, i+1) != len(b) {
		return "", false
	}
	return string(b[start:end]), true
}

// skipSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
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

// deviceCacheTTL is how long a token lookup is kept. A device revoked on
// this appliance's admin page is forgotten at once; one revoked by another
// process (the CLI) is refused within this time, as the checker's lists
// reach the gate within its refresh interval. One lookup per device and
// second costs nothing at scan rates.
const deviceCacheTTL = time.Second

// deviceCache keeps token lookups off the database on the hot path.
// Unknown tokens are not cached, so a new device works at once. Its keys
// are the tokens' hashes: the cache holds no token.
type deviceCache struct {
	lookup func(ctx context.Context, token string) (*store.Device, error)
	ttl    time.Duration
	mu     sync.Mutex
	m      map[[32]byte]cachedDevice
	// forgets counts forget calls: a lookup that began before one may
	// have read the device before its revocation, and is not kept.
	forgets uint64
}

type cachedDevice struct {
	dev     *store.Device
	expires time.Time
}

func newDeviceCache(db *store.DB, ttl time.Duration) *deviceCache {
	return &deviceCache{lookup: db.FindDeviceByToken, ttl: ttl, m: make(map[[32]byte]cachedDevice)}
}

// maxDeviceToken bounds the Authorization header's token before it is
// hashed or looked up.
const maxDeviceToken = 256

func (c *deviceCache) find(ctx context.Context, token string) (*store.Device, error) {
	if token == "" || len(token) > maxDeviceToken {
		return nil, store.ErrNotFound
	}
	// Hashed from a copy on the stack: []byte(token) would allocate.
	var buf [maxDeviceToken]byte
	key := sha256.Sum256(buf[:copy(buf[:], token)])
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	forgets := c.forgets
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.dev, nil
	}
	dev, err := c.lookup(ctx, token)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.forgets == forgets {
		if len(c.m) > 10000 {
			clear(c.m)
		}
		c.m[key] = cachedDevice{dev: dev, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return dev, nil
}
