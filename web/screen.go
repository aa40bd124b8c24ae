package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"passgate/check"
	"passgate/store"
	"passgate/web/i18n"
)

// A gate screen is one open gate page: two tabs, even of the same user,
// are two screens. Its identity is a random id the server gives the page
// when it renders it, together with the entrance the screen stands at
// (chosen on the page, carried in its address so a kiosk's bookmark keeps
// it). The screen's checks carry both, so the live feed can tell the
// screen its own results from everyone else's. An id only counts with
// the login session that sent it: a screen id copied to another browser
// names a different screen there, so nobody can push results into, or
// replay results from, somebody else's screen.

// screenID is the form of a screen id: 16 random bytes, base64url.
var screenID = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// newScreenID returns a fresh screen id.
func newScreenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported systems
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sessionKey names a login session without its token: the stream and
// the hub keep it in memory, so it must be useless as a cookie.
func sessionKey(token string) string {
	h := sha256.Sum256([]byte("passgate-screen\x00" + token))
	return hex.EncodeToString(h[:16])
}

// gateScreen is the screen a request comes from.
type gateScreen struct {
	owner    string // session key and screen id; empty: no screen
	entrance string
}

// origin is the screen as a check's origin (check.WithOrigin): the
// entrance rides along for the live list's label. An entrance never holds
// a control character, so the newline cannot be forged.
func (g gateScreen) origin() string {
	if g.owner == "" {
		return ""
	}
	return g.owner + "\n" + g.entrance
}

// parseOrigin is origin's inverse.
func parseOrigin(o string) (owner, entrance string) {
	owner, entrance, _ = strings.Cut(o, "\n")
	return owner, entrance
}

// requestScreen reads the screen and entrance a gate page sent, bound to
// the request's login session. An empty screen is no screen (a page
// posted without JavaScript); a malformed one, or an entrance that no
// admin could have named, is refused with an audit record and reported
// false (the answer is written).
func (s *Server) requestScreen(w http.ResponseWriter, r *http.Request, screen, entrance string) (gateScreen, bool) {
	var g gateScreen
	if entrance != "" {
		if store.CheckEntrance(entrance) != nil {
			s.refuseScreen(w, r, "entrance")
			return g, false
		}
		g.entrance = entrance
	}
	if screen == "" {
		return g, true
	}
	c, err := r.Cookie(SessionCookie)
	if !screenID.MatchString(screen) || err != nil || c.Value == "" {
		s.refuseScreen(w, r, "screen")
		return g, false
	}
	g.owner = sessionKey(c.Value) + "/" + screen
	return g, true
}

// refuseScreen answers 400 to a request naming a screen or entrance the
// appliance cannot accept, and records who sent it.
func (s *Server) refuseScreen(w http.ResponseWriter, r *http.Request, field string) {
	rec := &store.AuditRecord{
		Actor: actorOf(r), Action: store.AuditScreenRefused, Subject: r.URL.Path,
		Detail: store.AuditDetail(map[string]string{"field": field, "addr": remoteHost(r)}),
	}
	if err := s.db.Audit(r.Context(), rec); err != nil {
		s.log.Error("audit refused gate screen", "err", err)
	}
	s.log.Warn("gate screen refused", "field", field, "by", actorOf(r), "addr", remoteHost(r))
	writePanelError(w, http.StatusBadRequest, i18n.FromRequest(r), "gate.err.screen")
}

// loadEntrances reads which entrance each input stands at into memory:
// the live feed looks it up for every decision.
func (s *Server) loadEntrances(ctx context.Context) error {
	m, err := s.db.FindEntrances(ctx)
	if err != nil {
		return err
	}
	s.entrances.Store(&m)
	return nil
}

// entranceOf is the entrance an admin assigned to source, if any.
func (s *Server) entranceOf(source string) (string, bool) {
	m := s.entrances.Load()
	if m == nil {
		return "", false
	}
	e, ok := (*m)[source]
	return e, ok
}

// entranceNames lists the entrances inputs are assigned to, sorted.
func (s *Server) entranceNames() []string {
	m := s.entrances.Load()
	if m == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range *m {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// renderEvent turns a decision into the live feed's event: who asked,
// where, and both forms of its JSON.
func (s *Server) renderEvent(d *check.Decision) event {
	ev := event{}
	if d.Origin != "" {
		ev.owner, ev.entrance = parseOrigin(d.Origin)
	} else {
		ev.entrance, ev.assigned = s.entranceOf(d.Source)
	}
	loc := s.clockZone()
	ev.full = gateEventJSON(d, ev.entrance, ev.assigned, loc)
	ev.brief = gateBriefJSON(d, ev.entrance, loc)
	return ev
}
