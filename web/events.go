package web

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passgate/check"
)

// Live feed sizes. The ring holds enough decisions to cover a gate screen
// reconnecting after a short network drop at a busy gate; a client's
// queue is small because a healthy browser drains it at once, and one
// that does not is dropped rather than allowed to hold up anything else.
const (
	eventRing        = 256
	eventClientQueue = 64
	eventHeartbeat   = 15 * time.Second
	eventRecheck     = 15 * time.Second
)

// event is one decision as the live feed sends it. A screen gets the
// full form (the holder's masked name and ID tail, to show in its
// decision panel) only for a decision of an input assigned to its
// entrance; every other decision, its own checks included (it shows
// those from its own request's answer), comes in the brief form its
// live list needs.
type event struct {
	id uint64
	// owner is the session and screen that asked for the check; empty
	// for the appliance's inputs and API devices.
	owner string
	// entrance is where the check was made: the asking screen's, or the
	// one an admin assigned to the input.
	entrance string
	assigned bool   // the source is an input assigned to entrance
	full     []byte // JSON, one line, with the holder and "panel":true
	brief    []byte // JSON, one line, without the holder
}

// forPanel reports whether ev belongs in cl's decision panel.
func (ev *event) forPanel(cl *eventClient) bool {
	return ev.assigned && cl.entrance != "" && ev.entrance == cl.entrance
}

// mine reports whether ev is one of cl's own results: a check cl made,
// or one of an input at its entrance. Only these are replayed.
func (ev *event) mine(cl *eventClient) bool {
	return ev.owner != "" && ev.owner == cl.owner || ev.forPanel(cl)
}

// data is the JSON cl is sent for ev.
func (ev *event) data(cl *eventClient) []byte {
	if ev.forPanel(cl) {
		return ev.full
	}
	return ev.brief
}

// eventClient is one open gate screen.
type eventClient struct {
	ch       chan event
	owner    string // session and screen: see screenOwner
	session  string // the login session, for ending the stream with it
	userID   int64
	entrance string        // empty: the screen stands at no entrance
	end      chan struct{} // closed when its session ended
	ended    bool
}

// eventHub fans decisions out to the live gate screens. It subscribes to
// the checker once, on first use, keeps the latest decisions in a ring so
// a screen that reconnects with Last-Event-ID gets what it missed of its
// own results, and never lets a slow screen delay a check: a client whose
// queue is full is dropped (its browser reconnects and replays from the
// ring).
type eventHub struct {
	once sync.Once
	stop func() // ends the checker subscription

	mu      sync.Mutex
	ring    [eventRing]event
	last    uint64 // id of the newest event; ids start at 1
	clients map[*eventClient]struct{}
	servers map[*http.Server]struct{} // whose Shutdown ends the feed
	closed  bool
	done    chan struct{} // closed by close: every stream ends

	heartbeat time.Duration
	// recheck is how often a stream checks that its login session is
	// still valid (nanoseconds; tests shorten it while screens run):
	// logout ends a stream at once, expiry and a disabled account within
	// recheck.
	recheck atomic.Int64
	// render turns a decision into an event; set at start.
	render func(*check.Decision) event
}

func newEventHub() *eventHub {
	h := &eventHub{
		clients:   make(map[*eventClient]struct{}),
		servers:   make(map[*http.Server]struct{}),
		done:      make(chan struct{}),
		heartbeat: eventHeartbeat,
	}
	h.recheck.Store(int64(eventRecheck))
	return h
}

// start subscribes to c once. Later calls do nothing, so every handler
// that needs the feed may call it.
func (h *eventHub) start(c *check.Checker, render func(*check.Decision) event) {
	h.once.Do(func() {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		h.render = render
		// The checker drops decisions for a subscriber whose buffer is
		// full; this loop only encodes and fans out, so a generous
		// buffer absorbs any burst.
		ch, stop := c.Subscribe(1024)
		h.stop = stop
		h.mu.Unlock()
		go func() {
			for d := range ch {
				h.publish(render(d))
			}
		}()
	})
}

// publish appends an event to the ring and offers it to every client.
func (h *eventHub) publish(ev event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.last++
	ev.id = h.last
	h.ring[ev.id%eventRing] = ev
	for cl := range h.clients {
		select {
		case cl.ch <- ev:
		default:
			// Too slow: drop it so it cannot fall further behind.
			delete(h.clients, cl)
			close(cl.ch)
		}
	}
}

// subscribe registers cl and returns its own events after lastID still in
// the ring, in order. lastID 0 means a fresh screen: nothing to replay.
// An id newer than any event here comes from before a restart; the ring
// cannot know what that screen missed, so nothing is replayed. Another
// screen's checks are never replayed: a screen cannot page back through
// everyone's results by sending a small id.
func (h *eventHub) subscribe(lastID uint64, cl *eventClient) ([]event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	var replay []event
	if lastID > 0 && lastID < h.last {
		first := lastID + 1
		if h.last-lastID > eventRing {
			first = h.last - eventRing + 1
		}
		for id := first; id <= h.last; id++ {
			if ev := h.ring[id%eventRing]; ev.mine(cl) {
				replay = append(replay, ev)
			}
		}
	}
	cl.ch = make(chan event, eventClientQueue)
	cl.end = make(chan struct{})
	h.clients[cl] = struct{}{}
	return replay, true
}

// endSession ends the streams of a login session (logout).
func (h *eventHub) endSession(session string) {
	h.endWhere(func(cl *eventClient) bool { return cl.session == session })
}

// endUser ends every stream of a user (account disabled, password
// changed).
func (h *eventHub) endUser(id int64) {
	h.endWhere(func(cl *eventClient) bool { return cl.userID == id })
}

func (h *eventHub) endWhere(match func(*eventClient) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		if !cl.ended && match(cl) {
			cl.ended = true
			close(cl.end)
		}
	}
}

// closeOnShutdown makes hs's Shutdown end every stream. Shutdown waits
// for active requests to finish, and a stream would otherwise run until
// the grace period is over; the server is found from the request, so
// whoever serves the handler gets this without wiring it up.
func (h *eventHub) closeOnShutdown(hs *http.Server) {
	if hs == nil {
		return
	}
	h.mu.Lock()
	_, seen := h.servers[hs]
	h.servers[hs] = struct{}{}
	h.mu.Unlock()
	if !seen {
		hs.RegisterOnShutdown(h.close)
	}
}

// unsubscribe removes a client that went away.
func (h *eventHub) unsubscribe(cl *eventClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[cl]; ok {
		delete(h.clients, cl)
		close(cl.ch)
	}
}

// clientCount is how many screens are connected (for tests).
func (h *eventHub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// close ends the subscription and every open stream. It is safe to call
// more than once.
func (h *eventHub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	stop := h.stop
	for cl := range h.clients {
		delete(h.clients, cl)
		close(cl.ch)
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// parseEventID reads a Last-Event-ID value; anything unparsable counts as
// no id (a fresh screen).
func parseEventID(s string) uint64 {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
