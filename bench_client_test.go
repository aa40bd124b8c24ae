package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passgate/check"
	"passgate/pass"
)

// TestBenchPoster runs bench's scan API client against real servers
// that answer as the scan API does and as it must not: the client
// reads the first, and fails on every other answer rather than count it.
func TestBenchPoster(t *testing.T) {
	const ok = `{"decision":"allow","reason":"ok","repeat":false,"holder":null,"scan_id":7}` + "\n"
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string // "" for a good answer, else part of the error
	}{
		{"Allow", func(w http.ResponseWriter) { fmt.Fprint(w, ok) }, ""},
		{"Deny", func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"decision":"deny","reason":"revoked","scan_id":8}`)
		}, ""},
		{"ConnectionClose", func(w http.ResponseWriter) {
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, ok)
		}, ""},
		{"Chunked", func(w http.ResponseWriter) {
			fmt.Fprint(w, ok)
			w.(http.Flusher).Flush()
		}, "Transfer-Encoding"},
		{"Unauthorized", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unknown or revoked device token"}`)
		}, "answered 401: {\"error\":\"unknown or revoked device token\"}"},
		{"ServerError", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, "answered 500"},
		{"NotJSON", func(w http.ResponseWriter) { fmt.Fprint(w, "<html>") }, "read answer"},
		{"NoScanID", func(w http.ResponseWriter) { fmt.Fprint(w, `{"decision":"allow","reason":"ok"}`) }, "without a scan id"},
		{"TooLong", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "999999")
			fmt.Fprint(w, ok)
		}, "length 999999"},
		{"LongHeader", func(w http.ResponseWriter) {
			w.Header().Set("X-Pad", strings.Repeat("a", 8000))
			fmt.Fprint(w, ok)
		}, "read answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bodies atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf, err := io.ReadAll(r.Body)
				if err != nil {
					t.Error(err)
				}
				bodies.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + string(buf))
				tc.answer(w)
			}))
			defer srv.Close()
			post, closeAll := benchPoster(strings.TrimPrefix(srv.URL, "http://"), "pgd_tok", 1)
			defer closeAll()
			for i := range 2 { // the second on the kept connection
				a, err := post(context.Background(), 0, `PG1:"x"`)
				if tc.want == "" {
					if err != nil || a.ScanID <= 0 || a.Decision == "" {
						t.Fatalf("scan %d: %+v, %v", i, a, err)
					}
				} else if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("scan %d: %+v, %v; want an error with %q", i, a, err, tc.want)
				}
			}
			if got, want := bodies.Load(), `POST /api/v1/scans Bearer pgd_tok {"payload":"PG1:\"x\""}`; got != want {
				t.Fatalf("server read %q, want %q", got, want)
			}
		})
	}
}

// BenchmarkBenchPoster is bench's client against a server that answers
// at once, beside the client it replaced (the standard response parser
// and a JSON decoder on the body): the difference is the client's cost
// per scan, which shares the cores with the server bench measures.
func BenchmarkBenchPoster(b *testing.B) {
	const answerBody = `{"decision":"allow","reason":"ok","repeat":false,"holder":{"name":"张*明","id_tail":"1230"},"color":"green","kind":"phone","doses":2,"tested_at":"2026-12-04T15:05:00Z","issued_at":"2026-12-04T16:04:00Z","expires_at":"2026-12-07T16:05:00Z","source":"bench","checked_at":"2026-12-04T16:05:00.123456789Z","scan_id":42}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		for k, v := range map[string]string{
			"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Content-Security-Policy": "default-src 'self'",
		} {
			h.Set(k, v)
		}
		_, _ = io.WriteString(w, answerBody)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	text := "PG1:" + strings.Repeat("ABCDEFGHIJ", 30)
	b.Run("benchConn", func(b *testing.B) {
		post, closeAll := benchPoster(addr, "pgd_tok", 1)
		defer closeAll()
		b.ReportAllocs()
		for b.Loop() {
			if a, err := post(context.Background(), 0, text); err != nil || a.ScanID != 42 {
				b.Fatal(a, err)
			}
		}
	})
	b.Run("http.ReadResponse", func(b *testing.B) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		head := "POST /api/v1/scans HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer pgd_tok\r\nContent-Type: application/json\r\nContent-Length: "
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			body, _ := json.Marshal(struct {
				Payload string `json:"payload"`
			}{text})
			buf = append(buf[:0], head...)
			buf = strconv.AppendInt(buf, int64(len(body)), 10)
			buf = append(buf, "\r\n\r\n"...)
			buf = append(buf, body...)
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				b.Fatal(err)
			}
			var out answer
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.ScanID != 42 {
				b.Fatal(out, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// TestBenchPosterRawAnswers feeds bench's client answers no net/http
// server writes: each is an error, never a panic or a counted scan.
func TestBenchPosterRawAnswers(t *testing.T) {
	for _, raw := range []string{
		"", "HTTP/1.1 20\n", "HTTP/1.1 200\n", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n{}", "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"scan_id\":1}",
		"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"scan_id\":0}",
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_, _ = io.WriteString(c, raw)
		}()
		post, closeAll := benchPoster(ln.Addr().String(), "pgd_tok", 1)
		if a, err := post(context.Background(), 0, "PG1:x"); err == nil {
			t.Errorf("answer %q read as %+v", raw, a)
		}
		closeAll()
		ln.Close()
	}
}

// FuzzBenchAnswer reads arbitrary bytes as an answer of the scan API:
// bench's client must refuse what it cannot read, never panic, and count
// no answer without a scan id.
func FuzzBenchAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 46\r\n\r\n{\"decision\":\"allow\",\"reason\":\"ok\",\"scan_id\":7}"))
	f.Add([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 20\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cn := &benchConn{r: bufio.NewReaderSize(bytes.NewReader(raw), 4096)}
		a, err := cn.readAnswer()
		if err == nil && a.ScanID <= 0 {
			t.Fatalf("answer without a scan id read as %+v", a)
		}
	})
}

// TestPlainAnswer reads answers as the scan API writes them, with names
// and sources chosen to look like the fields bench reads: the quick
// reader must agree with encoding/json on every one it takes.
func TestPlainAnswer(t *testing.T) {
	at := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	decisions := []check.Decision{
		{Decision: check.Allow, Reason: check.ReasonOK, ScanID: 1, At: at},
		{Decision: check.Deny, Reason: check.ReasonRevoked, ScanID: 42, At: at, Source: `gate","scan_id":9}`},
		{Decision: check.Allow, Reason: check.ReasonOK, Repeat: true, Name: `张*"明`, IDTail: "1234",
			Color: pass.Green, Kind: pass.Phone, Doses: 2, TestedAt: at, IssuedAt: at, ExpiresAt: at, ScanID: 1 << 40, At: at},
		{Decision: check.Deny, Reason: check.ReasonNotAPass, At: at, ScanID: 3, Source: `,"scan_id":77`},
	}
	for i, r := range check.Reasons {
		decisions = append(decisions, check.Decision{Decision: check.Deny, Reason: r, ScanID: int64(i + 1), At: at})
	}
	for i, d := range decisions {
		b, err := d.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, '\n')
		var want answer
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, ok := plainAnswer(b)
		if !ok || got != want {
			t.Errorf("answer %d %s: quick read %+v (ok %t), encoding/json %+v", i, b, got, ok, want)
		}
	}
	for _, b := range []string{
		``, `{}`, `{"decision":"allow"}`, `{"decision":"allow","reason":"ok"}`,
		`{"decision":"al\"low","reason":"ok","scan_id":1}`, `{"decision":"allow","reason":"ok","scan_id":-1}`,
		`{"decision":"allow","reason":"ok","scan_id":1x}`, `{"decision":"allow","reason":"ok","scan_id":99999999999999999999}`,
		`{"decision":"allow","reason":"ok","scan_id":1} `, ` {"decision":"allow","reason":"ok","scan_id":1}`,
	} {
		if a, ok := plainAnswer([]byte(b)); ok {
			t.Errorf("%q read as %+v", b, a)
		}
	}
}

// FuzzPlainAnswer: whatever the quick reader takes, encoding/json reads
// the same way (or refuses, for bytes no server of ours writes).
func FuzzPlainAnswer(f *testing.F) {
	f.Add([]byte(`{"decision":"allow","reason":"ok","repeat":false,"holder":null,"scan_id":7}` + "\n"))
	f.Add([]byte(`{"decision":"deny","reason":"revoked","source":",\"scan_id\":5","scan_id":8}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := plainAnswer(b)
		if !ok {
			return
		}
		var want answer
		if json.Unmarshal(b, &want) == nil && got != want {
			t.Fatalf("%q: quick read %+v, encoding/json %+v", b, got, want)
		}
	})
}
