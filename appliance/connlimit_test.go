package appliance

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLimitListener_IdleConnectionsHoldTheCap fills the cap with
// keep-alive connections left idle, as a misbehaving client would: a new
// client waits, is served once an idle one times out, and the log says
// once why it waited.
func TestLimitListener_IdleConnectionsHoldTheCap(t *testing.T) {
	const limit, idle = 3, 400 * time.Millisecond
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: idle, IdleTimeout: idle,
	}
	go srv.Serve(newLimitListener(ln, limit, log))
	t.Cleanup(func() { srv.Close() })

	// Each holder sends one request and keeps its connection open.
	for i := range limit {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if strings.Contains(logs.String(), "connection cap") {
		t.Fatalf("cap logged below the cap: %s", logs.String())
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	waited := time.Since(start)
	if err != nil {
		t.Fatalf("new client never served once idle connections timed out: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Served only after an idle connection was closed: the cap held.
	if waited < idle/2 {
		t.Errorf("served after %v, before any idle connection timed out: no cap", waited)
	}
	if n := strings.Count(logs.String(), "connection cap reached"); n != 1 {
		t.Errorf("cap warning logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "max_conns=3") {
		t.Errorf("warning does not name the cap:\n%s", logs.String())
	}
}

// TestLimitListener_CloseStopsWaitingAccept makes sure shutdown is not
// stuck behind a full cap.
func TestLimitListener_CloseStopsWaitingAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(ln, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go net.Dial("tcp", ln.Addr().String())
	go net.Dial("tcp", ln.Addr().String())
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	// Closing a connection twice gives its slot back once.
	c.Close()
	c.Close()
	if n := len(l.sem); n != 0 {
		t.Errorf("%d slots held after close, want 0", n)
	}
}

// syncBuffer is a log buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
