package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"passgate/scanner"
	"passgate/web"
)

// A disconnected scanner shows on the status page and as a warning in
// /readyz, without making the appliance unready.
func TestInputsState(t *testing.T) {
	t.Parallel()
	inputs := scanner.NewInputs()
	inputs.Update("gate-1", func(s *scanner.InputStatus) {
		s.Kind, s.Path, s.Connected, s.LastRead, s.Reads = "serial", "/dev/ttyACM0", true, time.Now(), 3
	})
	inputs.Update("kiosk-1", func(s *scanner.InputStatus) {
		s.Kind, s.Path, s.Errors, s.LastError = "evdev", "/dev/input/event3", 2, "no such device"
	})
	ts := newTestServer(t, web.Config{Inputs: inputs})

	resp, err := http.Get(ts.Srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Status   string           `json:"status"`
		Inputs   []map[string]any `json:"inputs"`
		Warnings []string         `json:"warnings"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Status != "ok" || len(body.Inputs) != 2 || len(body.Warnings) != 1 || !strings.Contains(body.Warnings[0], "kiosk-1") {
		t.Fatalf("readyz %d %+v", resp.StatusCode, body)
	}

	cl := ts.login(t, "admin", ts.AdminPassword)
	r, page := ts.get(t, cl, "/admin/status")
	if r.StatusCode != 200 {
		t.Fatalf("status page %d", r.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	rows := doc.Find(`[data-testid="input-row"]`)
	if rows.Length() != 2 {
		t.Fatalf("%d input rows, want 2", rows.Length())
	}
	if got := rows.Eq(0).Find(`[data-testid="input-state"]`).Text(); !strings.Contains(got, "✓") {
		t.Errorf("gate-1 state %q, want connected", got)
	}
	if got := rows.Eq(1).Find(`[data-testid="input-state"]`).Text(); !strings.Contains(got, "✗") {
		t.Errorf("kiosk-1 state %q, want not connected", got)
	}

	_, gate := ts.get(t, cl, "/gate")
	gdoc, err := goquery.NewDocumentFromReader(strings.NewReader(gate))
	if err != nil {
		t.Fatal(err)
	}
	items := gdoc.Find(`[data-testid="gate-inputs"] li`)
	if items.Length() != 2 {
		t.Fatalf("gate screen lists %d inputs, want 2", items.Length())
	}
	if v, _ := items.Eq(1).Attr("data-connected"); v != "false" || !strings.Contains(items.Eq(1).Text(), "kiosk-1") {
		t.Errorf("gate screen shows kiosk-1 as %q: %q", v, items.Eq(1).Text())
	}
}

// A keyboard-wedge scanner typing without a line end reads nothing; the
// keys it sent show on the status page, on /admin/inputs and as a
// /readyz warning, so staff can fix its suffix.
func TestInputsState_Unterminated(t *testing.T) {
	t.Parallel()
	inputs := scanner.NewInputs()
	inputs.Update("kiosk-1", func(s *scanner.InputStatus) {
		s.Kind, s.Path, s.Connected = "evdev", "/dev/input/event3", true
		s.Unterminated, s.LastUnterminated = 529, time.Now()
	})
	inputs.Update("gate-1", func(s *scanner.InputStatus) {
		s.Kind, s.Path, s.Connected, s.Reads = "serial", "/dev/ttyACM0", true, 3
	})
	flags := []scanner.InputSpec{{Name: "kiosk-1", Kind: "evdev", Spec: "/dev/input/event3"}, {Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM0"}}
	ts := newTestServer(t, web.Config{Inputs: inputs, InputsFromFlags: flags, ValidateInput: func(scanner.InputSpec) error { return nil }, InputsChanged: func() {}})

	code, body := getReady(t, ts)
	if code != 200 || len(body.Warnings) != 1 || !strings.Contains(body.Warnings[0], "kiosk-1 received 529 keys without a line end") {
		t.Fatalf("readyz %d %+v", code, body)
	}

	cl := ts.login(t, "admin", ts.AdminPassword)
	doc := getDoc(t, ts, cl, "/admin/status")
	rows := doc.Find(`[data-testid="input-row"]`)
	if got := rows.Find(`[data-testid="input-unterminated"]`); got.Length() != 1 || !strings.Contains(got.Text(), "529") {
		t.Errorf("status page: %d warnings %q, want one for kiosk-1 with 529 keys", got.Length(), got.Text())
	}
	if !strings.Contains(rows.Eq(1).Text(), "kiosk-1") || rows.Eq(1).Find(`[data-testid="input-unterminated"]`).Length() != 1 {
		t.Errorf("warning not on kiosk-1's row")
	}

	doc = getDoc(t, ts, cl, "/admin/inputs")
	if got := doc.Find(`[data-testid="input-kiosk-1"] [data-testid="unterminated"]`); !strings.Contains(got.Text(), "529") {
		t.Errorf("/admin/inputs: kiosk-1 warning %q, want 529 keys", got.Text())
	}
	if got := doc.Find(`[data-testid="input-gate-1"] [data-testid="unterminated"]`); got.Length() != 0 {
		t.Errorf("/admin/inputs: gate-1 has a warning %q", got.Text())
	}
}
