package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"passgate/assets"
	"passgate/check"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// gateRecent is how many checks the gate screen lists.
const gateRecent = 20

// CloseEvents ends the live feed: every open gate screen's stream returns
// and new ones are refused. The http.Server that serves a stream calls it
// on Shutdown by itself (see eventHub.closeOnShutdown); call it directly
// when streams must end without a Shutdown.
func (s *Server) CloseEvents() { s.events.close() }

// startEvents subscribes the live feed to the checker on first use.
// The entrances are loaded first: the feed looks every decision's up.
func (s *Server) startEvents() {
	s.entrancesOnce.Do(func() {
		if err := s.loadEntrances(context.Background()); err != nil {
			s.log.Error("load entrances", "err", err)
		}
	})
	s.events.start(s.checker, s.renderEvent)
}

// handleGate is the gate screen: the result panel, today's counters, the
// latest checks and the age of the lists. The scan log holds no names, so
// neither does the recent list.
func (s *Server) handleGate(w http.ResponseWriter, r *http.Request) {
	s.gatePage(w, r, http.StatusOK, nil)
}

// gatePage renders the gate screen with status, showing result in the
// panel when it is not nil (a check made without JavaScript).
func (s *Server) gatePage(w http.ResponseWriter, r *http.Request, status int, result *view.GateResult) {
	s.startEvents()
	ctx := r.Context()
	// Today is the district's day, whatever zone the server runs in.
	now := time.Now().In(s.clockZone())
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	allow, deny, err := s.db.ScanStats(ctx, midnight)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	scans, err := s.db.FindScans(ctx, store.ScanFilter{Limit: gateRecent})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	hold, err := s.db.GateHold(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := s.page(r, "gate.title")
	p.CSS = append(p.CSS, assets.Path("/assets/", "gate.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "sound.js"), assets.Path("/assets/", "result.js"), assets.Path("/assets/", "gate.js"))
	ls := s.listsState(ctx, now)
	m := view.Gate{
		AllowToday: allow, DenyToday: deny,
		ListsAge: listsAgeText(p.T, ls), ListsStale: ls.Stale, ListsBanner: ls.banner(),
		Enrolled: ls.Enrolled, SyncWaiting: ls.waiting(),
		Result: result,
		Screen: newScreenID(), Entrance: pageEntrance(r), Entrances: s.entranceNames(),
		HoldMs: int(hold.Milliseconds()),
	}
	if m.Entrance != "" {
		// The language switch keeps the screen at its entrance.
		p.Path = "/gate?entrance=" + url.QueryEscape(m.Entrance)
	}
	for _, in := range s.inputs.List() {
		m.Inputs = append(m.Inputs, view.GateInput{Name: in.Name, Connected: in.Connected})
	}
	for _, sc := range scans {
		m.Recent = append(m.Recent, view.GateScan{
			ID: sc.ID, Time: sc.At.In(now.Location()).Format("15:04:05"), Source: sc.Source,
			Allowed: check.Verdict(sc.Decision) == check.Allow, Reason: p.T.T("reason." + sc.Reason), Repeat: sc.Repeat,
			Entrance: s.sourceEntrance(sc.Source),
		})
	}
	s.render(w, r, status, view.GatePage(p, m))
}

// gateCheckRequest is the JSON form of a check from the gate screen.
type gateCheckRequest struct {
	Payload  *string `json:"payload"`
	Screen   string  `json:"screen"`   // the asking screen's id
	Entrance string  `json:"entrance"` // where that screen stands
}

// handleGateCheck checks a payload the gate screen read (keyboard-wedge
// scanner, paste or typed) and answers the decision with its display
// strings. The check is logged with the staff member as its source.
func (s *Server) handleGateCheck(w http.ResponseWriter, r *http.Request) {
	s.startEvents()
	t := i18n.FromRequest(r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxScanBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writePanelError(w, http.StatusRequestEntityTooLarge, t, "gate.err.too_large")
			return
		}
		writePanelError(w, http.StatusBadRequest, t, "gate.err.bad_request")
		return
	}
	var payload *string
	var screen, entrance string
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	// gate.js asks for JSON; a browser without JavaScript posts the plain
	// form and gets the gate screen back with the result in the panel.
	page := ct != "application/json" && !strings.Contains(r.Header.Get("Accept"), "application/json")
	switch ct {
	case "application/json":
		var req gateCheckRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writePanelError(w, http.StatusBadRequest, t, "gate.err.bad_request")
			return
		}
		payload, screen, entrance = req.Payload, req.Screen, req.Entrance
	case "application/x-www-form-urlencoded", "":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			writePanelError(w, http.StatusBadRequest, t, "gate.err.bad_request")
			return
		}
		if vs, ok := v["payload"]; ok && len(vs) > 0 {
			payload = &vs[0]
		}
		screen, entrance = v.Get("screen"), v.Get("entrance")
	default:
		writePanelError(w, http.StatusUnsupportedMediaType, t, "gate.err.bad_request")
		return
	}
	if payload == nil || strings.TrimSpace(*payload) == "" {
		if page {
			s.gatePage(w, r, http.StatusUnprocessableEntity, &view.GateResult{State: "error", Headline: t.T("gate.err.empty"), ReasonOther: t.OtherT("gate.err.empty")})
			return
		}
		writePanelError(w, http.StatusUnprocessableEntity, t, "gate.err.empty")
		return
	}
	g, ok := s.requestScreen(w, r, screen, entrance)
	if !ok {
		return
	}
	u := userFrom(r.Context())
	source := "gate"
	if u != nil {
		source = "gate:" + u.Username
	}
	if s.gateCheckDelay != nil {
		s.gateCheckDelay(r.Context())
	}
	d, err := s.checker.Check(check.WithOrigin(r.Context(), g.origin()), source, *payload)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if page {
		s.gatePage(w, r, http.StatusOK, gateResult(d, t, g.entrance, s.clockZone()))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(gateEventJSON(d, g.entrance, false, s.clockZone()), '\n'))
}

// gateResult is a decision as the page itself shows it in its panel.
func gateResult(d *check.Decision, t i18n.Printer, entrance string, loc *time.Location) *view.GateResult {
	g := displayOf(d, t, loc)
	return &view.GateResult{
		State: string(d.Decision), Headline: g.Headline, Reason: g.Reason, ReasonOther: g.ReasonOther,
		Name: g.Name, IDTail: g.IDTail, Color: g.Color, Tested: g.Tested, Expires: g.Expires, Repeat: g.Repeat,
		Source: sourceLabel(d.Source, entrance), Time: g.Time, ScanID: d.ScanID,
	}
}

// sourceLabel is how a screen names where a check was made.
func sourceLabel(source, entrance string) string {
	if entrance == "" {
		return source
	}
	return source + " · " + entrance
}

// sourceEntrance is the entrance of a logged source, for the recent
// list: an assigned input's. A screen's own checks are logged under its
// user, who may stand at any entrance, so those have none.
func (s *Server) sourceEntrance(source string) string {
	e, _ := s.entranceOf(source)
	return e
}

// pageEntrance is the entrance a gate or camera page was opened for;
// a malformed one counts as none, and the page offers the choice again.
func pageEntrance(r *http.Request) string {
	e := r.URL.Query().Get("entrance")
	if store.CheckEntrance(e) != nil {
		return ""
	}
	return e
}

// handleGateEvents is the live feed: server-sent events, one per decision
// made by any input of this process, in the brief form the live list
// needs, and in full for the decisions of the inputs at the screen's
// entrance (query parameters screen and entrance, as on /gate/check). A
// reconnecting EventSource sends Last-Event-ID and gets the results of
// its own it missed that are still in the ring. A comment line every
// heartbeat keeps proxies and the browser from timing the stream out.
//
// The stream lives no longer than the login session that opened it:
// logout ends it at once, and every hub.recheck it looks the session up
// again, so an expired session, a disabled account or a changed password
// ends it too. It then sends an "end" event, so the screen says why
// instead of reconnecting.
func (s *Server) handleGateEvents(w http.ResponseWriter, r *http.Request) {
	s.startEvents()
	hub := s.events
	c, err := r.Cookie(SessionCookie)
	u := userFrom(r.Context())
	if err != nil || c.Value == "" || u == nil {
		writeError(w, http.StatusUnauthorized, "login required")
		return
	}
	q := r.URL.Query()
	g, ok := s.requestScreen(w, r, q.Get("screen"), q.Get("entrance"))
	if !ok {
		return
	}
	hs, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	hub.closeOnShutdown(hs)
	// EventSource sends Last-Event-ID when it reconnects by itself; the
	// page passes it as ?last= when it had to open a new stream.
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("last")
	}
	st := &gateStream{
		w: w, rc: http.NewResponseController(w), token: c.Value, user: u,
		cl: &eventClient{owner: g.owner, session: sessionKey(c.Value), userID: u.ID, entrance: g.entrance},
	}
	replay, ok := hub.subscribe(parseEventID(lastID), st.cl)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer hub.unsubscribe(st.cl)
	if s.openGateStream(st, replay) != nil {
		return
	}
	s.followGateStream(r.Context(), st)
}

// gateStream is one open live feed: where it writes, and the session and
// subscription it lives by.
type gateStream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	token string // the session cookie that opened it
	user  *store.User
	cl    *eventClient
}

// openGateStream starts the event stream: its headers, the reconnect
// delay, the current status and the screen's own results it missed.
func (s *Server) openGateStream(st *gateStream, replay []event) error {
	// The stream outlives the server's write timeout by design; clear it
	// (a server without one reports an error, which changes nothing).
	_ = st.rc.SetWriteDeadline(time.Time{})
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	// Reconnect quickly after a drop: the gate must not miss much.
	if _, err := io.WriteString(st.w, "retry: 2000\n\n"); err != nil {
		return err
	}
	if err := s.writeGateStatus(st.w); err != nil {
		return err
	}
	for _, ev := range replay {
		// Replayed results are old: the screen lists them but does not
		// put them in its panel.
		if err := writeEvent(st.w, "replay", ev.id, ev.data(st.cl)); err != nil {
			return err
		}
	}
	return st.rc.Flush()
}

// followGateStream sends decisions and heartbeats until the client goes,
// the server shuts down, or the session that opened the stream ends.
func (s *Server) followGateStream(ctx context.Context, st *gateStream) {
	hub := s.events
	tick := time.NewTicker(hub.heartbeat)
	defer tick.Stop()
	recheck := time.NewTicker(time.Duration(hub.recheck.Load()))
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hub.done:
			return
		case <-st.cl.end:
			s.endGateStream(st)
			return
		case <-recheck.C:
			_, su, err := s.db.FindSession(ctx, st.token)
			if errors.Is(err, store.ErrNotFound) || err == nil && su.ID != st.user.ID {
				s.endGateStream(st)
				return
			}
			// Any other error is the database's, not the session's: the
			// next recheck decides.
		case ev, ok := <-st.cl.ch:
			if !ok {
				return // dropped as too slow, or shutting down
			}
			if writeEvent(st.w, "", ev.id, ev.data(st.cl)) != nil || st.rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(st.w, ": heartbeat\n\n"); err != nil {
				return
			}
			if s.writeGateStatus(st.w) != nil || st.rc.Flush() != nil {
				return
			}
		}
	}
}

// endGateStream tells the screen its session is over, so it says why
// instead of reconnecting.
func (s *Server) endGateStream(st *gateStream) {
	s.log.Info("gate stream ended with its session", "user", st.user.Username)
	_, _ = io.WriteString(st.w, "event: end\ndata: {\"reason\":\"session\"}\n\n")
	_ = st.rc.Flush()
}

// listsStaleAfter is when the gate screen warns that the trust and
// revocation lists have not been reloaded: the server reloads them every
// second, so a minute means reloading is failing.
const listsStaleAfter = time.Minute

// gateStatus is the "status" event: how old the lists are, in every
// language. It carries no id, so it does not move a screen's
// Last-Event-ID.
type gateStatus struct {
	ListsAge   map[i18n.Lang]string `json:"lists_age"`
	ListsStale bool                 `json:"lists_stale"`
	// ListsBanner is the bilingual warning of stale lists; empty while
	// they are fresh.
	ListsBanner string      `json:"lists_banner"`
	Inputs      []gateInput `json:"inputs"`
	// SyncWaiting is the records not yet at the hub; absent when the
	// appliance is not enrolled with one.
	SyncWaiting *int64 `json:"sync_waiting,omitempty"`
}

// gateInput is a scanner input's state in the status event.
type gateInput struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
}

func (s *Server) writeGateStatus(w io.Writer) error {
	ls := s.listsState(context.Background(), time.Now())
	st := gateStatus{ListsAge: make(map[i18n.Lang]string, len(i18n.Langs)), ListsStale: ls.Stale, ListsBanner: ls.banner()}
	for _, l := range i18n.Langs {
		st.ListsAge[l] = listsAgeText(i18n.Printer{Lang: l}, ls)
	}
	if ls.Enrolled {
		w := ls.waiting()
		st.SyncWaiting = &w
	}
	st.Inputs = []gateInput{}
	for _, in := range s.inputs.List() {
		st.Inputs = append(st.Inputs, gateInput{Name: in.Name, Connected: in.Connected})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
	return err
}

// writeEvent writes one event: a decision when name is empty.
func writeEvent(w io.Writer, name string, id uint64, data []byte) error {
	if name != "" {
		if _, err := fmt.Fprintf(w, "event: %s\n", name); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", id, data)
	return err
}

// gateDisplay is what the result panel shows for a decision, in one
// language.
type gateDisplay struct {
	Headline    string `json:"headline"`
	Reason      string `json:"reason"`
	ReasonOther string `json:"reason_other"` // the reason in the other language
	Name        string `json:"name"`
	IDTail      string `json:"id_tail"`
	Color       string `json:"color"`
	Tested      string `json:"tested"`
	Expires     string `json:"expires"`
	Repeat      string `json:"repeat"`
	Time        string `json:"time"`
}

// gateEventJSON is a decision as the scan API renders it, plus where it
// was made ("entrance", when known), "panel" when it is for the decision
// panel of the screens at that entrance, and a "display" object with the
// panel's strings in every language, keyed by language tag. Both the
// check answer and the live feed carry it, so a screen renders its own
// checks and its inputs' the same way.
func gateEventJSON(d *check.Decision, entrance string, panel bool, loc *time.Location) []byte {
	base, err := d.MarshalJSON()
	if err != nil || len(base) < 2 || base[len(base)-1] != '}' {
		// Cannot happen for a Decision; keep the feed alive regardless.
		base = []byte(`{"decision":"deny","reason":"malformed"}`)
	}
	disp := make(map[i18n.Lang]gateDisplay, len(i18n.Langs))
	for _, l := range i18n.Langs {
		disp[l] = displayOf(d, i18n.Printer{Lang: l}, loc)
	}
	dj, _ := json.Marshal(disp)
	ej, _ := json.Marshal(entrance)
	out := make([]byte, 0, len(base)+len(dj)+len(ej)+48)
	out = append(out, base[:len(base)-1]...)
	if entrance != "" {
		out = append(out, `,"entrance":`...)
		out = append(out, ej...)
	}
	if panel {
		out = append(out, `,"panel":true`...)
	}
	out = append(out, `,"display":`...)
	out = append(out, dj...)
	return append(out, '}')
}

// gateBrief is a decision as the live list shows another screen's or
// input's check: what was decided, why, where and when, and nothing about
// the holder.
type gateBrief struct {
	Decision check.Verdict             `json:"decision"`
	Reason   check.Reason              `json:"reason"`
	Repeat   bool                      `json:"repeat"`
	Source   string                    `json:"source"`
	Entrance string                    `json:"entrance,omitempty"`
	At       time.Time                 `json:"checked_at"`
	ScanID   int64                     `json:"scan_id"`
	Display  map[i18n.Lang]gateDisplay `json:"display"`
}

// gateBriefJSON renders d as a gateBrief, its times in loc.
func gateBriefJSON(d *check.Decision, entrance string, loc *time.Location) []byte {
	b := gateBrief{
		Decision: d.Decision, Reason: d.Reason, Repeat: d.Repeat, Source: d.Source,
		Entrance: entrance, At: d.At.UTC(), ScanID: d.ScanID,
		Display: make(map[i18n.Lang]gateDisplay, len(i18n.Langs)),
	}
	for _, l := range i18n.Langs {
		g := displayOf(d, i18n.Printer{Lang: l}, loc)
		b.Display[l] = gateDisplay{Headline: g.Headline, Reason: g.Reason, ReasonOther: g.ReasonOther, Repeat: g.Repeat, Time: g.Time}
	}
	out, err := json.Marshal(b)
	if err != nil {
		return []byte(`{"decision":"deny","reason":"malformed"}`)
	}
	return out
}

// displayOf renders a decision's panel strings in t's language. The
// colour is shown when it is what decided: an allow, or a deny for the
// colour itself. A revoked or expired green pass is not shown as green.
// Times are shown in loc, the district's zone.
func displayOf(d *check.Decision, t i18n.Printer, loc *time.Location) gateDisplay {
	other := i18n.Printer{Lang: t.Other()}
	g := gateDisplay{
		Headline: t.T("decision.deny"),
		Reason:   t.T("reason." + string(d.Reason)), ReasonOther: other.T("reason." + string(d.Reason)),
		Time: d.At.In(loc).Format("15:04:05"),
	}
	if d.Allowed() {
		g.Headline = t.T("decision.allow")
	}
	if d.Repeat {
		g.Repeat = t.T("gate.repeat")
	}
	if !d.Color.Valid() {
		return g // the pass did not verify: nothing about a holder is known
	}
	g.Name = d.Name
	g.IDTail = t.T("gate.id_tail", d.IDTail)
	switch d.Reason {
	case check.ReasonOK, check.ReasonStatusGreen, check.ReasonStatusYellow, check.ReasonStatusRed:
		g.Color = t.T("color." + d.Color.String())
	}
	if d.TestedAt.IsZero() {
		g.Tested = t.T("gate.tested_none")
	} else {
		g.Tested = testAge(t, d.At.Sub(d.TestedAt))
	}
	if !d.ExpiresAt.IsZero() {
		g.Expires = t.T("gate.expires", d.ExpiresAt.In(loc).Format("01-02 15:04"))
	}
	return g
}

// testAge says how long ago a test sample was taken, in the unit a person
// at the gate compares with the policy: minutes, then hours, then days.
func testAge(t i18n.Printer, age time.Duration) string {
	switch {
	case age < time.Hour:
		return t.T("gate.tested_min", max(0, int(age/time.Minute)))
	case age < 72*time.Hour:
		return t.T("gate.tested_h", int(age/time.Hour))
	default:
		return t.T("gate.tested_d", int(age/(24*time.Hour)))
	}
}

// listsAgeText says how old the lists are, or that an enrolled
// appliance has not had them from its hub yet.
func listsAgeText(t i18n.Printer, ls listsState) string {
	if ls.Never {
		return t.T("sync.never")
	}
	return fmtAge(t, ls.Age)
}

// fmtAge renders how old the lists are, e.g. "12 秒前" / "12 s ago".
func fmtAge(t i18n.Printer, age time.Duration) string {
	switch {
	case age < time.Minute:
		return t.T("gate.age_s", max(0, int(age/time.Second)))
	case age < time.Hour:
		return t.T("gate.age_min", int(age/time.Minute))
	default:
		return t.T("gate.age_h", int(age/time.Hour))
	}
}
