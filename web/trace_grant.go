package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"passgate/export"
	"passgate/pass"
	"passgate/store"
	"passgate/web/view"
)

// traceGrantTTL is how long a trace's result may be acted on (opening a
// contact, marking, exporting) before the officer runs it again.
const traceGrantTTL = 30 * time.Minute

// maxTraceGrants bounds the results kept: at the cap the oldest goes.
const maxTraceGrants = 64

// traceGrant is a trace shown to one session: the contacts it found are
// all that the officer may open or act on through it, and Seq (its audit
// record) is what every such act names. Its token is opaque and useless
// from another session, so nothing about a person travels in a URL but
// the pseudonym the desk's own URLs carry.
type traceGrant struct {
	token   string
	session [sha256.Size]byte
	seq     int64
	req     export.TraceRequest
	res     *store.TraceResult
	view    view.TraceResults
	known   map[pass.Subject]bool // contact → registered in the district
	expires time.Time
}

// traceGrants holds the traces shown lately; its zero value is ready.
type traceGrants struct {
	mu sync.Mutex
	m  map[string]*traceGrant
}

// sessionHash identifies the request's session without keeping its
// cookie.
func sessionHash(r *http.Request) [sha256.Size]byte {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256([]byte(c.Value))
}

// put keeps g for the request's session and sets its token.
func (gs *traceGrants) put(r *http.Request, g *traceGrant, now time.Time) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	g.token, g.session, g.expires = hex.EncodeToString(b[:]), sessionHash(r), now.Add(traceGrantTTL)
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.m == nil {
		gs.m = map[string]*traceGrant{}
	}
	var oldest *traceGrant
	for k, o := range gs.m {
		if now.After(o.expires) {
			delete(gs.m, k)
		} else if oldest == nil || o.expires.Before(oldest.expires) {
			oldest = o
		}
	}
	if len(gs.m) >= maxTraceGrants && oldest != nil {
		delete(gs.m, oldest.token)
	}
	gs.m[g.token] = g
}

// get returns the live grant of token for the request's session.
func (gs *traceGrants) get(r *http.Request, token string, now time.Time) *traceGrant {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.m[token]
	if g == nil || now.After(g.expires) || g.session != sessionHash(r) {
		return nil
	}
	return g
}

// newTraceGrant records what a trace found, for acting on it.
func newTraceGrant(seq int64, req *export.TraceRequest, res *store.TraceResult, v view.TraceResults) *traceGrant {
	g := &traceGrant{seq: seq, req: *req, res: res, view: v, known: map[pass.Subject]bool{}}
	for _, c := range res.Contacts {
		g.known[c.Subject] = c.MaskedName != ""
	}
	return g
}
