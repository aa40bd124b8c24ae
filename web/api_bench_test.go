package web_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"passgate/internal/checktest"
	"passgate/web"
)

// scanBench is a district with a scanner device and signed passes, for
// the scan API's benchmarks.
type scanBench struct {
	h      http.Handler
	bearer string
	bodies [][]byte
}

func newScanBench(b *testing.B) *scanBench {
	f := checktest.New(b)
	_, token, err := f.DB.CreateDevice(f.Ctx, "bench", "test")
	if err != nil {
		b.Fatal(err)
	}
	sb := &scanBench{
		h:      web.New(web.Config{DB: f.DB, Checker: f.Checker, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler(),
		bearer: "Bearer " + token,
	}
	for range 4096 {
		sb.bodies = append(sb.bodies, []byte(`{"payload":"`+f.Sign(f.Claims())+`"}`))
	}
	return sb
}

// allowed fails b unless body is a logged allow.
func allowed(b *testing.B, status int, body []byte) {
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"decision":"allow"`)) || !bytes.Contains(body, []byte(`"scan_id":`)) {
		b.Fatalf("status %d: %s", status, body)
	}
}

// BenchmarkScanHandler is one scan through the routes and middleware of
// the scan API without a socket, 64 in flight per core (each waits for
// its group commit): its allocs/op are the handler's own, plus the
// request and recorder the benchmark builds.
func BenchmarkScanHandler(b *testing.B) {
	sb := newScanBench(b)
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/scans", bytes.NewReader(sb.bodies[i.Add(1)%int64(len(sb.bodies))]))
			req.Header.Set("Authorization", sb.bearer)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			sb.h.ServeHTTP(rec, req)
			allowed(b, rec.Code, rec.Body.Bytes())
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}

// BenchmarkScanAPILoopback is one scan through a real server on loopback,
// each client goroutine on its own keep-alive connection writing a
// prebuilt request and reading the answer with the standard parser: the
// difference to BenchmarkScanHandler is net/http and the socket.
func BenchmarkScanAPILoopback(b *testing.B) {
	sb := newScanBench(b)
	srv := httptest.NewServer(sb.h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	head := "POST /api/v1/scans HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: " + sb.bearer +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var req, body []byte
		for pb.Next() {
			payload := sb.bodies[i.Add(1)%int64(len(sb.bodies))]
			req = append(req[:0], head...)
			req = strconv.AppendInt(req, int64(len(payload)), 10)
			req = append(req, "\r\n\r\n"...)
			req = append(req, payload...)
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				b.Error(err)
				return
			}
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Error(err)
				return
			}
			allowed(b, resp.StatusCode, body)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}
