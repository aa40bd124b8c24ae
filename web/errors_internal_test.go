package web

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"passgate/store"
	"passgate/web/i18n"
)

// TestFail_Internal checks that an unexpected error is logged with its
// cause and shown as the error page without it, under the user's own
// navigation; and that a wrapped *Error keeps its code.
func TestFail_Internal(t *testing.T) {
	t.Parallel()
	var logBuf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	issuer := &store.User{Username: "wang", Role: store.UserIssuer}
	for _, lang := range i18n.Langs {
		t.Run(string(lang), func(t *testing.T) {
			logBuf.Reset()
			req := httptest.NewRequest("GET", "/desk/people/ab", nil)
			req.AddCookie(&http.Cookie{Name: i18n.CookieName, Value: string(lang)})
			req = req.WithContext(withUser(req.Context(), issuer))
			rec := httptest.NewRecorder()
			s.fail(rec, req, fmt.Errorf("find person: %w", errors.New("disk I/O error at /var/lib/passgate")))
			body := rec.Body.String()
			if rec.Code != http.StatusInternalServerError || !strings.Contains(body, `data-code="internal"`) {
				t.Fatalf("status %d, body %.300s", rec.Code, body)
			}
			if strings.Contains(body, "disk I/O") || strings.Contains(body, "/var/lib") {
				t.Error("the page shows the cause")
			}
			p := i18n.Printer{Lang: lang}
			if !strings.Contains(body, p.T("error.internal")) || !strings.Contains(body, `data-testid="nav-desk"`) {
				t.Error("no message in the page's language, or no navigation")
			}
			if !strings.Contains(logBuf.String(), "disk I/O error") {
				t.Errorf("cause not logged: %q", logBuf.String())
			}
		})
	}
	t.Run("WrappedCodeKept", func(t *testing.T) {
		logBuf.Reset()
		req := httptest.NewRequest("GET", "/x", nil)
		req = req.WithContext(withUser(req.Context(), issuer))
		rec := httptest.NewRecorder()
		s.fail(rec, req, fmt.Errorf("open export: %w", &Error{Code: ENotFound}))
		if rec.Code != http.StatusNotFound || logBuf.Len() != 0 {
			t.Fatalf("status %d, logged %q", rec.Code, logBuf.String())
		}
	})
	t.Run("API", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/v1/scans", nil)
		rec := httptest.NewRecorder()
		s.fail(rec, req, errors.New("database is locked"))
		if rec.Code != 500 || strings.TrimSpace(rec.Body.String()) != `{"error":"internal error"}` {
			t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
		}
	})
}
