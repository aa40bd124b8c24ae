package appliance

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Connection limits of the web listeners. Every open connection holds a
// file descriptor, and an appliance has about a thousand (the database,
// its WAL and the scanners take some): without a cap, clients that open
// connections and leave them idle exhaust the descriptors and new
// connections, the gate's included, stall. The cap is well above what a
// venue uses (a gate screen holds two or three connections, one of them
// the live feed), and idle or silent connections are closed quickly so a
// held cap frees itself.
const (
	// maxConns bounds the open connections of each listener.
	maxConns = 256
	// maxTLSConns bounds the HTTPS listener's, which also carries the
	// district sync API: on a hub every enrolled appliance holds a pull
	// open there (a long poll), 2,000 in a large district. The service
	// unit allows 65,536 descriptors (Go raises the soft limit to it).
	maxTLSConns = 4096
	// idleTimeout closes a keep-alive connection with no request after
	// this long; browsers reopen one in a few milliseconds on the LAN.
	idleTimeout = 30 * time.Second
	// readHeaderTimeout closes a connection that has not sent its
	// request headers in this time (a LAN client sends them at once).
	readHeaderTimeout = 5 * time.Second
	// capLogEvery rate-limits the warning that the cap is reached.
	capLogEvery = time.Minute
)

// limitListener serves at most cap connections at once; beyond that the
// next one waits for a slot and the others queue in the kernel's backlog
// instead of failing. Reaching the cap logs one warning a minute at most.
type limitListener struct {
	net.Listener
	sem     chan struct{}
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanoseconds of the last warning
	closed  chan struct{}
	once    sync.Once
}

func newLimitListener(ln net.Listener, limit int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, limit), log: log, closed: make(chan struct{})}
}

// Accept takes the next connection and, when the cap is reached, holds
// it until a slot frees: one descriptor over the cap at most, and the
// warning is logged only when a client really waits.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.sem <- struct{}{}:
	default:
		now := time.Now().UnixNano()
		if last := l.lastLog.Load(); now-last >= int64(capLogEvery) && l.lastLog.CompareAndSwap(last, now) {
			l.log.Warn("connection cap reached: new connections wait until one closes",
				"addr", l.Addr().String(), "max_conns", cap(l.sem))
		}
		select {
		case l.sem <- struct{}{}:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close stops a waiting Accept too.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
