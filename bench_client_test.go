package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
