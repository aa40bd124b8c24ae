package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"passgate/check"
	"passgate/district"
	"passgate/metrics"
	"passgate/pass"
	"passgate/scanner"
	"passgate/store"
	"passgate/web"
)

// metricsServer is a test appliance wired the way serve wires it: the
// checker reports to the metrics, which the web server serves.
type metricsServer struct {
	*testServer
	inputs *scanner.Inputs
	token  string // a device token for the scan API
}

// metricsToken is the scraper token the metrics tests configure.
const metricsToken = "scrape-token-0123456789abcdef"

func newMetricsServer(t *testing.T, access web.MetricsAccess) *metricsServer {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const adminPassword = "admin-test-password"
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: adminPassword}); err != nil {
		t.Fatal(err)
	}
	inputs := scanner.NewInputs()
	m := metrics.New(metrics.Config{DB: db, Inputs: inputs, Version: "v-test"})
	db.ObserveScanCommits(m.ScanCommitted)
	c, err := check.New(ctx, check.Config{DB: db, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	_, token, err := db.CreateDevice(ctx, "gate-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	h := web.New(web.Config{DB: db, Checker: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Inputs: inputs, Metrics: m, MetricsAccess: access}).Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &metricsServer{
		testServer: &testServer{DB: db, Checker: c, Srv: srv, AdminPassword: adminPassword},
		inputs:     inputs, token: token,
	}
}

// scan posts payload to the scan API and returns the decision's reason.
func (ms *metricsServer) scan(t *testing.T, payload string) (decision, reason string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"payload": payload})
	req, _ := http.NewRequest(http.MethodPost, ms.Srv.URL+"/api/v1/scans", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+ms.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ Decision, Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scan: status %d, %v", resp.StatusCode, err)
	}
	return d.Decision, d.Reason
}

// scrape reads /metrics with c (nil: an anonymous loopback client) and
// parses the text exposition; a response that does not parse fails the
// test.
func (ms *metricsServer) scrape(t *testing.T, c *http.Client) map[string]*dto.MetricFamily {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(ms.Srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics does not parse: %v", err)
	}
	return fams
}

// sample finds the sample of family name whose labels include want; ok
// false if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	f, ok := fams[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value is the value of a counter, gauge or untyped sample (0 if absent).
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m, ok := sample(fams, name, labels)
	if !ok {
		return 0
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// checkCounts maps "decision/reason" to the checks_total value.
func checkCounts(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams["passgate_checks_total"].GetMetric() {
		var d, r string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "decision":
				d = l.GetValue()
			case "reason":
				r = l.GetValue()
			}
		}
		out[d+"/"+r] = m.GetCounter().GetValue()
	}
	return out
}

func TestMetricsCountChecks(t *testing.T) {
	t.Parallel()
	ms := newMetricsServer(t, web.MetricsAccess{Loopback: true})
	ctx := t.Context()
	issue := func(name, id string) string {
		iss, err := district.Issue(ctx, ms.DB, district.IssueRequest{
			Name: name, IDNumber: id, TestedAt: time.Now().Add(-2 * time.Hour), Doses: -1, Actor: "test",
		})
		if err != nil {
			t.Fatal(err)
		}
		return iss.Text
	}
	a, b := issue("张三明", "610113199001011230"), issue("李四", "610113199202021232")

	before := ms.scrape(t, nil)
	// Every pre-resolved series is there before the first check, at 0.
	counts := checkCounts(before)
	for _, r := range check.Reasons {
		d := "deny"
		if r == check.ReasonOK {
			d = "allow"
		}
		if v, ok := counts[d+"/"+string(r)]; !ok || v != 0 {
			t.Errorf("before any check: checks_total{%s,%s} = %v (present %t), want 0", d, r, v, ok)
		}
	}

	payloads := []string{a, b, a, "hello", "hello", "hello", strings.Repeat("x", pass.MaxTextLen+1)}
	want := map[string]float64{}
	for _, p := range payloads {
		d, r := ms.scan(t, p)
		want[d+"/"+r]++
	}
	// The expectation comes from the answers; check they are the mix
	// this test means to cover.
	if want["allow/ok"] != 3 || want["deny/not_a_pass"] != 3 || want["deny/too_long"] != 1 {
		t.Fatalf("the scan API answered %v", want)
	}

	after := ms.scrape(t, nil)
	got := checkCounts(after)
	for k, v := range got {
		if delta := v - counts[k]; delta != want[k] {
			t.Errorf("checks_total{%s} moved by %v, want %v", k, delta, want[k])
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("checks_total{%s} missing", k)
		}
	}
	n := uint64(len(payloads))
	hist := func(fams map[string]*dto.MetricFamily, name string) *dto.Histogram {
		m, ok := sample(fams, name, nil)
		if !ok || m.Histogram == nil {
			t.Fatalf("%s missing or not a histogram", name)
		}
		return m.Histogram
	}
	if c := hist(after, "passgate_check_duration_seconds").GetSampleCount() - hist(before, "passgate_check_duration_seconds").GetSampleCount(); c != n {
		t.Errorf("check_duration_seconds counted %d checks, want %d", c, n)
	}
	// Every check logged one scan, and only checks log scans: the batch
	// sizes add up to the checks, in at least one and at most n commits.
	bs := hist(after, "passgate_scan_commit_batch_size").GetSampleSum() - hist(before, "passgate_scan_commit_batch_size").GetSampleSum()
	commits := hist(after, "passgate_scan_commit_duration_seconds").GetSampleCount() - hist(before, "passgate_scan_commit_duration_seconds").GetSampleCount()
	if bs != float64(n) || commits < 1 || commits > n {
		t.Errorf("scan commits: %v scans in %d commits, want %d scans in 1..%d", bs, commits, n, n)
	}
	if v := value(after, "passgate_check_errors_total", nil); v != 0 {
		t.Errorf("check_errors_total = %v, want 0", v)
	}

	// State read at scrape time.
	seq, _, err := ms.DB.AuditHead(ctx)
	if err != nil || seq == 0 {
		t.Fatalf("audit head: %d %v", seq, err)
	}
	if v := value(after, "passgate_audit_records_total", nil); v != float64(seq) {
		t.Errorf("audit_records_total = %v, want the audit head %d", v, seq)
	}
	if v := value(after, "passgate_db_size_bytes", map[string]string{"file": "db"}); v < 4096 {
		t.Errorf("db_size_bytes{file=db} = %v, want the size of a real database", v)
	}
	if v := value(after, "passgate_build_info", map[string]string{"version": "v-test"}); v != 1 {
		t.Errorf("build_info{version=v-test} = %v, want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "go_build_info"} {
		if _, ok := after[name]; !ok {
			t.Errorf("%s missing: the runtime, process and build collectors must be registered", name)
		}
	}
}

func TestMetricsInputsAndExports(t *testing.T) {
	t.Parallel()
	ms := newMetricsServer(t, web.MetricsAccess{Loopback: true})
	ms.inputs.Update("north", func(s *scanner.InputStatus) {
		s.Kind, s.Connected, s.LastRead, s.Reads, s.Errors = "serial", true, time.Now().Add(-30*time.Second), 12, 1
	})
	ms.inputs.Update("south", func(s *scanner.InputStatus) { s.Kind = "evdev" })

	fams := ms.scrape(t, nil)
	north := map[string]string{"input": "north", "kind": "serial"}
	south := map[string]string{"input": "south", "kind": "evdev"}
	if v := value(fams, "passgate_input_connected", north); v != 1 {
		t.Errorf("input_connected{north} = %v, want 1", v)
	}
	if m, ok := sample(fams, "passgate_input_connected", south); !ok || m.GetGauge().GetValue() != 0 {
		t.Errorf("input_connected{south} = %v (present %t), want 0", m, ok)
	}
	if v := value(fams, "passgate_input_last_read_age_seconds", north); v < 30 || v > 90 {
		t.Errorf("input_last_read_age_seconds{north} = %v, want about 30", v)
	}
	if _, ok := sample(fams, "passgate_input_last_read_age_seconds", south); ok {
		t.Error("input_last_read_age_seconds{south} present for an input that never read")
	}
	if v := value(fams, "passgate_input_reads_total", north); v != 12 {
		t.Errorf("input_reads_total{north} = %v, want 12", v)
	}

	// Two checks, then an admin exports them.
	ms.scan(t, "hello")
	ms.scan(t, "world")
	c := ms.login(t, "admin", ms.AdminPassword)
	now := time.Now()
	job := startJob(t, ms.testServer, c, exportForm(now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, 2).Format("2006-01-02")))
	waitState(t, ms.testServer, c, job, "done")
	fams = ms.scrape(t, nil)
	if v := value(fams, "passgate_exports_total", map[string]string{"kind": "scans", "format": "csv", "result": "done"}); v != 1 {
		t.Errorf("exports_total{scans,csv,done} = %v, want 1", v)
	}
	if v := value(fams, "passgate_export_rows_total", map[string]string{"kind": "scans"}); v != 2 {
		t.Errorf("export_rows_total{scans} = %v, want 2", v)
	}
}

func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	open := newMetricsServer(t, web.MetricsAccess{Loopback: true, Token: metricsToken})
	closed := newMetricsServer(t, web.MetricsAccess{Token: metricsToken})
	closed.createUser(t, "m-staff", store.UserStaff, "staff-password")
	staff := closed.login(t, "m-staff", "staff-password")
	admin := closed.login(t, "admin", closed.AdminPassword)

	for _, tc := range []struct {
		name   string
		ms     *metricsServer
		client *http.Client
		header map[string]string
		want   int
	}{
		{"LoopbackTrusted", open, nil, nil, http.StatusOK},
		{"LoopbackBehindProxy", open, nil, map[string]string{"X-Forwarded-For": "192.168.1.20"}, http.StatusUnauthorized},
		{"LoopbackForwardedHeader", open, nil, map[string]string{"Forwarded": "for=192.168.1.20"}, http.StatusUnauthorized},
		{"LoopbackWrongToken", open, nil, map[string]string{"Authorization": "Bearer not-the-token-at-all"}, http.StatusUnauthorized},
		{"Anonymous", closed, nil, nil, http.StatusUnauthorized},
		{"Token", closed, nil, map[string]string{"Authorization": "Bearer " + metricsToken}, http.StatusOK},
		{"TokenLowerCaseScheme", closed, nil, map[string]string{"Authorization": "bearer " + metricsToken}, http.StatusOK},
		{"TokenPrefix", closed, nil, map[string]string{"Authorization": "Bearer " + metricsToken[:len(metricsToken)-1]}, http.StatusUnauthorized},
		{"BasicAuth", closed, nil, map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}, http.StatusUnauthorized},
		{"DeviceToken", closed, nil, map[string]string{"Authorization": "Bearer " + closed.token}, http.StatusUnauthorized},
		{"AdminSession", closed, admin, nil, http.StatusOK},
		{"StaffSession", closed, staff, nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			if c == nil {
				c = http.DefaultClient
			}
			req, _ := http.NewRequest(http.MethodGet, tc.ms.Srv.URL+"/metrics", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %s, want %d; body %.200s", resp.Status, tc.want, b)
			}
			switch tc.want {
			case http.StatusOK:
				if !strings.Contains(string(b), "passgate_checks_total") {
					t.Fatalf("body lacks passgate_checks_total: %.300s", b)
				}
			case http.StatusUnauthorized:
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") || strings.Contains(string(b), "passgate_") {
					t.Fatalf("401 without a Bearer challenge or with metrics: %q %.300s", resp.Header.Get("WWW-Authenticate"), b)
				}
			}
		})
	}

	// A client elsewhere on the LAN: the same handler, asked from a
	// non-loopback address (a test server only listens on loopback).
	lan := web.New(web.Config{DB: open.DB, Checker: open.Checker, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(metrics.Config{DB: open.DB}), MetricsAccess: web.MetricsAccess{Loopback: true, Token: metricsToken}}).Handler()
	for _, tc := range []struct {
		name, remote, auth string
		want               int
	}{
		{"LAN", "192.168.1.20:40000", "", http.StatusUnauthorized},
		{"LANv6", "[fe80::1]:40000", "", http.StatusUnauthorized},
		{"LANWithToken", "192.168.1.20:40000", "Bearer " + metricsToken, http.StatusOK},
		{"MappedLoopback", "[::ffff:127.0.0.1]:40000", "", http.StatusOK},
		{"IPv6Loopback", "[::1]:40000", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			lan.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("from %s: %d, want %d", tc.remote, rec.Code, tc.want)
			}
		})
	}

	// A token too short to be safe is not configured at all.
	weak := newMetricsServer(t, web.MetricsAccess{Token: "short"})
	req, _ := http.NewRequest(http.MethodGet, weak.Srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer short")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a 5-byte token was accepted: %s", resp.Status)
	}
}

func TestMetricsNotEnabled(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	resp, _ := ts.get(t, c, "/metrics")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics without metrics: %s, want 404", resp.Status)
	}
}
