package districtsync

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// How long the hub waits for a push's body. The hub's HTTP server cuts
// every request whose whole read takes longer than its ReadTimeout (30 s)
// and headers slower than ReadHeaderTimeout: that is what protects it
// from clients that hold connections open by trickling bytes (slowloris).
// A push from an appliance on a slow link may honestly take longer, so
// once its sender is authenticated the deadline is extended while bytes
// arrive: the body may take pushBodyGrace plus one second per
// pushBodyMinRate bytes read, no more than pushBodyIdle without a byte,
// and never more than pushBodyMax in all. A sender slower than the
// minimum rate on average is cut as before, and only an enrolled
// appliance's push gets more than the server's ReadTimeout.
const (
	pushBodyGrace   = 30 * time.Second
	pushBodyMinRate = 1 << 10 // bytes per second: 8 kbit/s
	pushBodyIdle    = 20 * time.Second
	pushBodyMax     = 10 * time.Minute
	// pushAnswerTime is the time left to ingest and answer once the
	// body is in: the server's WriteTimeout counts from the request's
	// headers, which a slow body may have used up.
	pushAnswerTime = 60 * time.Second
)

// pushBodyLimits are the limits above; zero fields take their defaults
// (tests shrink them to run a slow link in seconds).
type pushBodyLimits struct {
	grace, idle, max time.Duration
	minRate          int64
}

func (l pushBodyLimits) orDefaults() pushBodyLimits {
	if l.grace <= 0 {
		l.grace = pushBodyGrace
	}
	if l.idle <= 0 {
		l.idle = pushBodyIdle
	}
	if l.max <= 0 {
		l.max = pushBodyMax
	}
	if l.minRate <= 0 {
		l.minRate = pushBodyMinRate
	}
	return l
}

// paced reads a request body, moving the connection's read deadline
// forward as bytes arrive (see pushBodyGrace), and remembers how much it
// read and how the underlying reader failed.
type paced struct {
	r     io.Reader
	rc    *http.ResponseController
	lim   pushBodyLimits
	start time.Time
	n     int64
	err   error // the underlying reader's error other than io.EOF
	slow  bool  // the sender fell below the minimum rate
}

func (p *paced) Read(b []byte) (int, error) {
	now := time.Now()
	budget := p.start.Add(p.lim.grace + time.Duration(p.n*int64(time.Second)/p.lim.minRate))
	budget = minTime(budget, p.start.Add(p.lim.max))
	if !now.Before(budget) {
		p.slow = true
		p.err = os.ErrDeadlineExceeded
		return 0, p.err
	}
	// Not every ResponseWriter can move the deadline (a recorder in
	// tests): the server's ReadTimeout then stays in force.
	_ = p.rc.SetReadDeadline(minTime(budget, now.Add(p.lim.idle)))
	n, err := p.r.Read(b)
	p.n += int64(n)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// readPush decodes the body of an authenticated push into v, allowing a
// slow but progressing sender more than the server's ReadTimeout. A body
// that stopped arriving in time is answered 408 "timeout" (logged with
// how long it took and how much came), a sender that went away 400
// "incomplete", and only a body that arrived whole but does not decode
// 400 "bad_request".
func (s *Server) readPush(w http.ResponseWriter, r *http.Request, appliance string, v any) error {
	rc := http.NewResponseController(w)
	p := &paced{r: r.Body, rc: rc, lim: s.pushBody.orDefaults(), start: time.Now()}
	err := readBody(p, r.Header.Get("Content-Encoding"), v)
	// However long the body took, the answer gets its own time.
	_ = rc.SetWriteDeadline(time.Now().Add(pushAnswerTime))
	if err == nil {
		return nil
	}
	took := time.Since(p.start).Round(100 * time.Millisecond)
	var ne interface{ Timeout() bool }
	switch {
	case p.slow || errors.Is(p.err, os.ErrDeadlineExceeded) || (errors.As(p.err, &ne) && ne.Timeout()):
		msg := fmt.Sprintf("push body timed out after %s, %d bytes read", took, p.n)
		s.log.Warn("sync "+msg, "appliance", appliance)
		return &CallError{Status: http.StatusRequestTimeout, Err: Error{Code: "timeout", Message: msg}}
	case p.err != nil:
		msg := fmt.Sprintf("push body cut off after %s, %d bytes read: %v", took, p.n, p.err)
		s.log.Warn("sync "+msg, "appliance", appliance)
		return &CallError{Status: http.StatusBadRequest, Err: Error{Code: "incomplete", Message: msg}}
	}
	return readRequestError(err)
}
