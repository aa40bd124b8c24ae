package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/store"
	"passgate/web"
)

type fixture struct {
	t     *testing.T
	dir   string // the data directory
	db    *store.DB
	srv   *httptest.Server
	token string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	c, err := check.New(ctx, check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	_, token, err := db.CreateDevice(ctx, "gate-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(web.Config{DB: db, Checker: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() {
		srv.Close()
		db.Close()
	})
	return &fixture{t: t, dir: dir, db: db, srv: srv, token: token}
}

func (f *fixture) issue(name, id string) string {
	f.t.Helper()
	iss, err := district.Issue(context.Background(), f.db, district.IssueRequest{
		Name: name, IDNumber: id, TestedAt: time.Now().Add(-2 * time.Hour), Doses: -1, Actor: "test",
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return iss.Text
}

func (f *fixture) post(auth, body string) (*http.Response, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/scans", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		f.t.Fatalf("response is not JSON: %v", err)
	}
	return resp, m
}

func TestScanAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	text := f.issue("张三明", "610113199001011230")
	bearer := "Bearer " + f.token

	t.Run("Allow", func(t *testing.T) {
		resp, m := f.post(bearer, `{"payload":"`+text+`"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %v", resp.StatusCode, m)
		}
		for _, k := range []string{"decision", "reason", "repeat", "holder", "color", "tested_at", "expires_at", "scan_id"} {
			if _, ok := m[k]; !ok {
				t.Errorf("response lacks %q: %v", k, m)
			}
		}
		h, _ := m["holder"].(map[string]any)
		if m["decision"] != "allow" || m["reason"] != "ok" || m["repeat"] != false || m["color"] != "green" ||
			h["name"] != "张*明" || h["id_tail"] != "1230" {
			t.Fatalf("unexpected decision %v", m)
		}
		if _, err := time.Parse(time.RFC3339, m["expires_at"].(string)); err != nil {
			t.Fatalf("expires_at: %v", err)
		}
		scans, err := f.db.FindScans(t.Context(), store.ScanFilter{Limit: 1})
		if err != nil || len(scans) != 1 || float64(scans[0].ID) != m["scan_id"] || scans[0].Source != "gate-1" {
			t.Fatalf("scan not logged as %v: %v %v", m["scan_id"], scans, err)
		}
	})
	t.Run("Repeat", func(t *testing.T) {
		// Its own server with the pass scanned once, so it runs alone.
		f := newFixture(t)
		text := f.issue("张三明", "610113199001011230")
		bearer := "Bearer " + f.token
		if resp, m := f.post(bearer, `{"payload":"`+text+`"}`); resp.StatusCode != 200 || m["repeat"] != false {
			t.Fatalf("first scan %d %v", resp.StatusCode, m)
		}
		_, m := f.post(bearer, `{"payload":"`+text+`"}`)
		if m["repeat"] != true || m["decision"] != "allow" {
			t.Fatalf("second scan %v", m)
		}
	})
	t.Run("NotAPassIsALoggedDeny", func(t *testing.T) {
		resp, m := f.post(bearer, `{"payload":"hello"}`)
		if resp.StatusCode != 200 || m["decision"] != "deny" || m["reason"] != "not_a_pass" || m["holder"] != nil {
			t.Fatalf("%d %v", resp.StatusCode, m)
		}
		if id, _ := m["scan_id"].(float64); id <= 0 {
			t.Fatalf("deny not logged: %v", m)
		}
	})

	scanAPIRefusals(t, f, bearer)

	t.Run("RevokedDevice", func(t *testing.T) {
		_, tok, err := f.db.CreateDevice(t.Context(), "gate-2", "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.RevokeDevice(t.Context(), "gate-2", "test"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := f.post("Bearer "+tok, `{"payload":"x"}`); resp.StatusCode != 401 {
			t.Fatalf("revoked device: %d", resp.StatusCode)
		}
	})
	t.Run("RevokedByAnotherProcess", func(t *testing.T) {
		// The device is known to the server (its token lookup is cached)
		// when the CLI, with its own connections to the same database,
		// revokes it: within a second, as the checker's lists, it is
		// refused.
		_, tok, err := f.db.CreateDevice(t.Context(), "gate-3", "test")
		if err != nil {
			t.Fatal(err)
		}
		if resp, m := f.post("Bearer "+tok, `{"payload":"x"}`); resp.StatusCode != 200 {
			t.Fatalf("before the revocation: %d %v", resp.StatusCode, m)
		}
		cli, err := store.Open(t.Context(), f.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if err := cli.RevokeDevice(t.Context(), "gate-3", "test"); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		for {
			resp, _ := f.post("Bearer "+tok, `{"payload":"x"}`)
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
			if time.Since(revoked) > 2*time.Second {
				t.Fatalf("a device revoked %s ago is still let in: %d", time.Since(revoked).Round(time.Millisecond), resp.StatusCode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("Headers", func(t *testing.T) {
		// A device API's answers, allowed or refused, are JSON that no
		// browser sniffs, frames or caches.
		for _, tc := range []struct{ auth, body string }{
			{bearer, `{"payload":"` + text + `"}`}, {bearer, `{"payload":42}`}, {"", `{"payload":"x"}`},
		} {
			resp, _ := f.post(tc.auth, tc.body)
			for k, want := range map[string]string{
				"Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff",
				"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			} {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%d answer: %s %q, want %q", resp.StatusCode, k, got, want)
				}
			}
			if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%d answer: no content policy", resp.StatusCode)
			}
		}
	})
	t.Run("OversizedUnannounced", func(t *testing.T) {
		// A body sent in chunks announces no length: the bound holds
		// while it is read.
		body := io.MultiReader(strings.NewReader(`{"payload":"`), strings.NewReader(strings.Repeat("A", 1<<20)), strings.NewReader(`"}`))
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/scans", body)
		req.Header.Set("Authorization", bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
			t.Fatalf("status %d (length %d), want 413", resp.StatusCode, req.ContentLength)
		}
	})
	t.Run("WrongMethod", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL + "/api/v1/scans")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
	})
}

// scanAPIRefusals runs TestScanAPI's subtests of requests refused before
// any check: none is logged as a scan.
func scanAPIRefusals(t *testing.T, f *fixture, bearer string) {
	errCases := []struct {
		name   string
		auth   string
		body   string
		status int
	}{
		{"NoToken", "", `{"payload":"x"}`, 401},
		{"WrongToken", "Bearer pgd_nope", `{"payload":"x"}`, 401},
		{"NotBearer", "Basic " + f.token, `{"payload":"x"}`, 401},
		{"EmptyBearer", "Bearer ", `{"payload":"x"}`, 401},
		{"NotJSON", bearer, `payload=x`, 400},
		{"TruncatedJSON", bearer, `{"payload":"x`, 400},
		{"NoPayload", bearer, `{"code":"x"}`, 400},
		{"PayloadNotString", bearer, `{"payload":42}`, 400},
		{"EmptyBody", bearer, ``, 400},
		{"Oversized", bearer, `{"payload":"` + strings.Repeat("A", 1<<20) + `"}`, 413},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.db.FindScans(t.Context(), store.ScanFilter{Limit: 1})
			resp, m := f.post(tt.auth, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.status, m)
			}
			if msg, _ := m["error"].(string); msg == "" {
				t.Fatalf("no error message: %v", m)
			}
			after, _ := f.db.FindScans(t.Context(), store.ScanFilter{Limit: 1})
			if len(after) > 0 && (len(before) == 0 || after[0].ID != before[0].ID) {
				t.Fatal("a refused request was logged as a scan")
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	f.db.Close()
	resp, err := http.Get(f.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || m["status"] != "unavailable" {
		t.Fatalf("readyz with a closed database: %d %v", resp.StatusCode, m)
	}
}
