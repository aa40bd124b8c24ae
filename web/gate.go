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
	"passgate/scanner"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// gateRecent is how many checks the gate screen lists.
const gateRecent = 20

func (s *Server) gateRoutes() []route {
	return []route{
		{"GET /gate", Staff, s.handleGate},
		{"POST /gate/check", Staff, s.handleGateCheck},
		{"GET /gate/events", Staff, s.handleGateEvents},
	}
}

// CloseEvents ends the live feed: every open gate screen's stream returns
// and new ones are refused. The http.Server that serves a stream calls it
// on Shutdown by itself (see eventHub.closeOnShutdown); call it directly
// when streams must end without a Shutdown.
func (s *Server) CloseEvents() { s.events.close() }

// startEvents subscribes the live feed to the checker on first use.
func (s *Server) startEvents() { s.events.start(s.checker, gateEventJSON) }

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
	now := time.Now()
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
	p := s.page(r, "gate.title")
	p.CSS = append(p.CSS, assets.Path("/assets/", "gate.css"))
	p.JS = append(p.JS, assets.Path("/assets/", "sound.js"), assets.Path("/assets/", "gate.js"))
	ls := s.listsState(ctx, now)
	m := view.Gate{
		AllowToday: allow, DenyToday: deny,
		ListsAge: listsAgeText(p.T, ls), ListsStale: ls.Stale,
		Enrolled: ls.Enrolled, SyncWaiting: ls.waiting(),
		Result: result,
	}
	for _, in := range s.inputs.List() {
		m.Inputs = append(m.Inputs, view.GateInput{Name: in.Name, Connected: in.Connected})
	}
	for _, sc := range scans {
		m.Recent = append(m.Recent, view.GateScan{
			ID: sc.ID, Time: sc.At.Local().Format("15:04:05"), Source: sc.Source,
			Allowed: sc.Decision == scanner.Allow, Reason: p.T.T("reason." + sc.Reason), Repeat: sc.Repeat,
		})
	}
	s.render(w, r, status, view.GatePage(p, m))
}

// gateCheckRequest is the JSON form of a check from the gate screen.
type gateCheckRequest struct {
	Payload *string `json:"payload"`
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
			writeError(w, http.StatusRequestEntityTooLarge, t.T("gate.err.too_large"))
			return
		}
		writeError(w, http.StatusBadRequest, t.T("gate.err.bad_request"))
		return
	}
	var payload *string
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	// gate.js asks for JSON; a browser without JavaScript posts the plain
	// form and gets the gate screen back with the result in the panel.
	page := ct != "application/json" && !strings.Contains(r.Header.Get("Accept"), "application/json")
	switch ct {
	case "application/json":
		var req gateCheckRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, t.T("gate.err.bad_request"))
			return
		}
		payload = req.Payload
	case "application/x-www-form-urlencoded", "":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, t.T("gate.err.bad_request"))
			return
		}
		if vs, ok := v["payload"]; ok && len(vs) > 0 {
			payload = &vs[0]
		}
	default:
		writeError(w, http.StatusUnsupportedMediaType, t.T("gate.err.bad_request"))
		return
	}
	if payload == nil || strings.TrimSpace(*payload) == "" {
		if page {
			s.gatePage(w, r, http.StatusUnprocessableEntity, &view.GateResult{State: "error", Icon: "⚠", Headline: t.T("gate.err.empty")})
			return
		}
		writeError(w, http.StatusUnprocessableEntity, t.T("gate.err.empty"))
		return
	}
	u := userFrom(r.Context())
	source := "gate"
	if u != nil {
		source = "gate:" + u.Username
	}
	d, err := s.checker.Check(r.Context(), source, *payload)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if page {
		g := displayOf(d, t)
		s.gatePage(w, r, http.StatusOK, &view.GateResult{
			State: d.Decision, Icon: g.Icon, Headline: g.Headline, Reason: g.Reason, ReasonOther: g.ReasonOther,
			Name: g.Name, IDTail: g.IDTail, Color: g.Color, Tested: g.Tested, Expires: g.Expires, Repeat: g.Repeat,
			ScanID: d.ScanID,
		})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(gateEventJSON(d), '\n'))
}

// handleGateEvents is the live feed: server-sent events, one per decision
// made by any input of this process. A reconnecting EventSource sends
// Last-Event-ID and gets the decisions it missed that are still in the
// ring. A comment line every heartbeat keeps proxies and the browser
// from timing the stream out.
func (s *Server) handleGateEvents(w http.ResponseWriter, r *http.Request) {
	s.startEvents()
	hub := s.events
	hs, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	hub.closeOnShutdown(hs)
	// EventSource sends Last-Event-ID when it reconnects by itself; the
	// page passes it as ?last= when it had to open a new stream.
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last")
	}
	cl, replay, ok := hub.subscribe(parseEventID(lastID))
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer hub.unsubscribe(cl)

	rc := http.NewResponseController(w)
	// The stream outlives the server's write timeout by design; clear it
	// (a server without one reports an error, which changes nothing).
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Reconnect quickly after a drop: the gate must not miss much.
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if s.writeGateStatus(w) != nil {
		return
	}
	for _, ev := range replay {
		if writeEvent(w, ev) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(hub.heartbeat)
	defer tick.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hub.done:
			return
		case ev, ok := <-cl.ch:
			if !ok {
				return // dropped as too slow, or shutting down
			}
			if writeEvent(w, ev) != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
			if s.writeGateStatus(w) != nil || rc.Flush() != nil {
				return
			}
		}
	}
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
	Inputs     []gateInput          `json:"inputs"`
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
	st := gateStatus{ListsAge: make(map[i18n.Lang]string, len(i18n.Langs)), ListsStale: ls.Stale}
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

func writeEvent(w io.Writer, ev event) error {
	_, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.id, ev.data)
	return err
}

// gateDisplay is what the result panel shows for a decision, in one
// language.
type gateDisplay struct {
	Icon        string `json:"icon"`
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

// gateEventJSON is a decision as the scan API renders it, plus a
// "display" object with the panel's strings in every language, keyed by
// language tag. Both the check answer and the live feed carry it, so a
// screen renders its own checks and everyone else's the same way.
func gateEventJSON(d *scanner.Decision) []byte {
	base, err := d.MarshalJSON()
	if err != nil || len(base) < 2 || base[len(base)-1] != '}' {
		// Cannot happen for a Decision; keep the feed alive regardless.
		base = []byte(`{"decision":"deny","reason":"malformed"}`)
	}
	disp := make(map[i18n.Lang]gateDisplay, len(i18n.Langs))
	for _, l := range i18n.Langs {
		disp[l] = displayOf(d, i18n.Printer{Lang: l})
	}
	dj, _ := json.Marshal(disp)
	out := make([]byte, 0, len(base)+len(dj)+16)
	out = append(out, base[:len(base)-1]...)
	out = append(out, `,"display":`...)
	out = append(out, dj...)
	return append(out, '}')
}

// displayOf renders a decision's panel strings in t's language.
func displayOf(d *scanner.Decision, t i18n.Printer) gateDisplay {
	other := i18n.Printer{Lang: t.Other()}
	g := gateDisplay{
		Icon: "✗", Headline: t.T("decision.deny"),
		Reason: t.T("reason." + string(d.Reason)), ReasonOther: other.T("reason." + string(d.Reason)),
		Time: d.At.Local().Format("15:04:05"),
	}
	if d.Allowed() {
		g.Icon, g.Headline = "✓", t.T("decision.allow")
	}
	if d.Repeat {
		g.Repeat = t.T("gate.repeat")
	}
	if !d.Color.Valid() {
		return g // the pass did not verify: nothing about a holder is known
	}
	g.Name = d.Name
	g.IDTail = t.T("gate.id_tail", d.IDTail)
	g.Color = t.T("color." + d.Color.String())
	if d.TestedAt.IsZero() {
		g.Tested = t.T("gate.tested_none")
	} else {
		g.Tested = testAge(t, d.At.Sub(d.TestedAt))
	}
	if !d.ExpiresAt.IsZero() {
		g.Expires = t.T("gate.expires", d.ExpiresAt.Local().Format("01-02 15:04"))
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
