package web

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"passgate/scanner"
)

// Live feed sizes. The ring holds enough decisions to cover a gate screen
// reconnecting after a short network drop at a busy gate; a client's
// queue is small because a healthy browser drains it at once, and one
// that does not is dropped rather than allowed to hold up anything else.
const (
	eventRing        = 256
	eventClientQueue = 64
	eventHeartbeat   = 15 * time.Second
)

// event is one decision as the live feed sends it.
type event struct {
	id   uint64
	data []byte // JSON, one line
}

// eventClient is one open gate screen.
type eventClient struct {
	ch chan event
}

// eventHub fans decisions out to the live gate screens. It subscribes to
// the checker once, on first use, keeps the latest decisions in a ring so
// a screen that reconnects with Last-Event-ID gets what it missed, and
// never lets a slow screen delay a check: a client whose queue is full is
// dropped (its browser reconnects and replays from the ring).
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
	// render turns a decision into the event's JSON; set at start.
	render func(*scanner.Decision) []byte
}

func newEventHub() *eventHub {
	return &eventHub{
		clients:   make(map[*eventClient]struct{}),
		servers:   make(map[*http.Server]struct{}),
		done:      make(chan struct{}),
		heartbeat: eventHeartbeat,
	}
}

// start subscribes to c once. Later calls do nothing, so every handler
// that needs the feed may call it.
func (h *eventHub) start(c *scanner.Checker, render func(*scanner.Decision) []byte) {
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
func (h *eventHub) publish(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.last++
	ev := event{id: h.last, data: data}
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

// subscribe registers a client and returns the events after lastID still
// in the ring, in order. lastID 0 means a fresh screen: nothing to replay.
// An id newer than any event here comes from before a restart; the ring
// cannot know what that screen missed, so nothing is replayed.
func (h *eventHub) subscribe(lastID uint64) (*eventClient, []event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	var replay []event
	if lastID > 0 && lastID < h.last {
		first := lastID + 1
		if h.last-lastID > eventRing {
			first = h.last - eventRing + 1
		}
		for id := first; id <= h.last; id++ {
			replay = append(replay, h.ring[id%eventRing])
		}
	}
	cl := &eventClient{ch: make(chan event, eventClientQueue)}
	h.clients[cl] = struct{}{}
	return cl, replay, true
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
