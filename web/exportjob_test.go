package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"passgate/export"
	"passgate/store"
	"passgate/web"
	"passgate/web/i18n"
)

// heldRun is an export.Run that stops after its first progress report
// (the row count known, nothing written) until released or cancelled,
// so tests see a running export.
type heldRun struct {
	started chan string // the first progress, "done/total", once per run
	release chan struct{}
	once    sync.Once
}

func newHeldRun() *heldRun {
	return &heldRun{started: make(chan string, 8), release: make(chan struct{})}
}

func (h *heldRun) run(ctx context.Context, db *store.DB, w io.Writer, r *export.Request, p export.Progress) (int64, error) {
	first := true
	return export.Run(ctx, db, w, r, func(done, total int64) {
		p(done, total)
		if first {
			first = false
			h.started <- strconv.FormatInt(done, 10) + "/" + strconv.FormatInt(total, 10)
			select {
			case <-h.release:
			case <-ctx.Done():
			}
		}
	})
}

func (h *heldRun) releaseAll() { h.once.Do(func() { close(h.release) }) }

// exportStatus is the status endpoint's answer.
type exportStatus struct {
	State, Text string
	Done, Total int64
	Rows        int64
}

func getStatus(t *testing.T, ts *testServer, c *http.Client, job string) (int, exportStatus) {
	t.Helper()
	resp, body := ts.get(t, c, job+"/status")
	var st exportStatus
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("status %q: %v", body, err)
		}
	}
	return resp.StatusCode, st
}

// waitState polls the job's status until it is want.
func waitState(t *testing.T, ts *testServer, c *http.Client, job, want string) exportStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, st := getStatus(t, ts, c, job)
		if code == http.StatusOK && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d %+v, want %s", job, code, st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startJob posts the export form and returns the job's path.
func startJob(t *testing.T, ts *testServer, c *http.Client, form map[string][]string) string {
	t.Helper()
	resp, body := ts.postForm(t, c, "/admin/export", form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/export/jobs/") {
		t.Fatalf("start export: %d %q %.300s", resp.StatusCode, loc, body)
	}
	return loc
}

// exportFiles lists the files of the background exports under dir.
func exportFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "exports", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitNoFiles(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(exportFiles(t, dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("export files left: %q", exportFiles(t, dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func logExportScans(t *testing.T, ts *testServer) {
	t.Helper()
	day := time.Date(2026, 11, 3, 9, 0, 0, 0, time.Local)
	for i, src := range []string{"南门闸机", "=cmd", "东门"} {
		if err := ts.DB.LogScan(t.Context(), &store.Scan{At: day.Add(time.Duration(i) * time.Minute), Source: src, Decision: "deny", Reason: "expired"}); err != nil {
			t.Fatal(err)
		}
	}
}

func lastAudit(t *testing.T, db *store.DB) store.AuditRecord {
	t.Helper()
	var last store.AuditRecord
	if err := db.FindAudit(t.Context(), store.AuditFilter{Last: 1}, func(a *store.AuditRecord) error { last = *a; return nil }); err != nil {
		t.Fatal(err)
	}
	return last
}

func TestExportJob_Lifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	held := newHeldRun()
	ts := newTestServer(t, web.Config{ExportDir: dir})
	ts.Web.SetExportRun(held.run)
	ts.Web.SetExportKeep(time.Hour, 200*time.Millisecond)
	logExportScans(t, ts)
	c := ts.login(t, "admin", ts.AdminPassword)

	job := startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01", "format", "xlsx"))
	if id := strings.TrimPrefix(job, "/admin/export/jobs/"); len(id) < 26 {
		t.Errorf("job id %q is too short to be unguessable", id)
	}
	if got := <-held.started; got != "0/3" {
		t.Errorf("first progress %s, want 0/3", got)
	}
	st := waitState(t, ts, c, job, "running")
	if st.Done != 0 || st.Total != 3 || !strings.Contains(st.Text, "3") {
		t.Errorf("running status %+v", st)
	}
	resp, body := ts.get(t, c, job)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="export-progress"`) ||
		!strings.Contains(body, `data-testid="export-cancel"`) || !strings.Contains(body, "/assets/exportjob.") ||
		strings.Contains(body, `data-testid="export-download"`) || !strings.Contains(body, "雁塔区_scans_20261101-20261130.xlsx") {
		t.Errorf("running page: %d %.2000s", resp.StatusCode, body)
	}
	if resp, _ := ts.get(t, c, job+"/file"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("file of a running export: %d, want 404", resp.StatusCode)
	}
	// Every message of the page and the status exists in both languages.
	for _, lang := range []string{"en", "zh"} {
		u, _ := url.Parse(ts.Srv.URL)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: lang}})
		_, page := ts.get(t, c, job)
		_, status := ts.get(t, c, job+"/status")
		if strings.Contains(page, "admin.exportjob") || strings.Contains(status, "admin.exportjob") {
			t.Errorf("%s: untranslated key: %s", lang, status)
		}
	}
	if n := len(exportFiles(t, dir)); n != 1 {
		t.Errorf("%d files while running, want 1", n)
	}

	held.releaseAll()
	st = waitState(t, ts, c, job, "done")
	if st.Done != 3 || st.Total != 3 || st.Rows != 3 {
		t.Errorf("done status %+v", st)
	}
	if _, body := ts.get(t, c, job); !strings.Contains(body, `data-testid="export-download"`) || strings.Contains(body, `data-testid="export-progress"`) {
		t.Errorf("done page: %.2000s", body)
	}
	// Audited once complete, with the filter and the row count.
	if a := lastAudit(t, ts.DB); a.Action != store.AuditExport || a.Actor != "admin" || a.Subject != "scans" || !strings.Contains(string(a.Detail), `"rows":3`) {
		t.Errorf("audit %+v %s", a, a.Detail)
	}

	resp, body = ts.get(t, c, job+"/file")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %.200s", resp.StatusCode, body)
	}
	wantCD := `attachment; filename="scans_20261101-20261130.xlsx"; filename*=UTF-8''%E9%9B%81%E5%A1%94%E5%8C%BA_scans_20261101-20261130.xlsx`
	if cd := resp.Header.Get("Content-Disposition"); cd != wantCD {
		t.Errorf("Content-Disposition %s\nwant %s", cd, wantCD)
	}
	if ct := resp.Header.Get("Content-Type"); ct != export.XLSX.ContentType() {
		t.Errorf("Content-Type %q", ct)
	}
	// The file is what export.Run writes for the same request (an XLSX
	// workbook is byte-for-byte reproducible: excelize writes no times).
	if want := runExport(t, ts, "2026-11-01", "2026-12-01"); body != want {
		t.Errorf("download (%d bytes) differs from export.Run (%d bytes)", len(body), len(want))
	}
	// Removed a while after the download: the file, then the job.
	waitNoFiles(t, dir)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := getStatus(t, ts, c, job)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still there after its download expired: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := ts.get(t, c, job+"/file"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("download after expiry: %d, want 404", resp.StatusCode)
	}
}

func TestExportJob_Cancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	held := newHeldRun()
	defer held.releaseAll()
	ts := newTestServer(t, web.Config{ExportDir: dir})
	ts.Web.SetExportRun(held.run)
	logExportScans(t, ts)
	c := ts.login(t, "admin", ts.AdminPassword)
	before := lastAudit(t, ts.DB)

	job := startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
	<-held.started
	if len(exportFiles(t, dir)) != 1 {
		t.Fatal("no file while running")
	}
	resp, _ := ts.postForm(t, c, job+"/cancel", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != job {
		t.Fatalf("cancel: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitState(t, ts, c, job, "cancelled")
	waitNoFiles(t, dir)
	if resp, _ := ts.get(t, c, job+"/file"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("download of a cancelled export: %d, want 404", resp.StatusCode)
	}
	if _, body := ts.get(t, c, job); !strings.Contains(body, `data-state="cancelled"`) || strings.Contains(body, `data-testid="export-download"`) {
		t.Errorf("cancelled page: %.1500s", body)
	}
	// Only its start is on record: it was started, never completed.
	if a := lastAudit(t, ts.DB); a.Seq != before.Seq+1 || a.Action != store.AuditExportStarted {
		t.Errorf("a cancelled export was audited as done: %+v", a)
	}

	// A finished export's file can be discarded the same way.
	held.releaseAll()
	job = startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
	waitState(t, ts, c, job, "done")
	if len(exportFiles(t, dir)) != 1 {
		t.Fatal("no file when done")
	}
	ts.postForm(t, c, job+"/cancel", nil)
	waitState(t, ts, c, job, "cancelled")
	waitNoFiles(t, dir)
}

func TestExportJob_OwnerAndLimit(t *testing.T) {
	t.Parallel()
	held := newHeldRun()
	defer held.releaseAll()
	ts := newTestServer(t)
	ts.Web.SetExportRun(held.run)
	ts.createUser(t, "admin2", store.UserAdmin, "another admin password")
	c := ts.login(t, "admin", ts.AdminPassword)
	c2 := ts.login(t, "admin2", "another admin password")

	var jobs []string
	for range 2 {
		jobs = append(jobs, startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01")))
		<-held.started
	}
	// Another admin sees nothing of them and cannot cancel them.
	for _, job := range jobs {
		for _, p := range []string{job, job + "/status", job + "/file"} {
			if resp, _ := ts.get(t, c2, p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("admin2 GET %s: %d, want 404", p, resp.StatusCode)
			}
		}
		if resp, _ := ts.postForm(t, c2, job+"/cancel", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("admin2 cancel: %d, want 404", resp.StatusCode)
		}
		waitState(t, ts, c, job, "running")
	}
	// A guessed id is not found either.
	if resp, _ := ts.get(t, c, "/admin/export/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAA/status"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown job: %d", resp.StatusCode)
	}

	// Two run on the appliance: a third, by anyone, is refused with the
	// form kept.
	for i, cl := range []*http.Client{c, c2} {
		resp, body := ts.postForm(t, cl, "/admin/export", exportForm("2026-11-01", "2026-12-01", "source", "东门"))
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `data-testid="export-form"`) ||
			!strings.Contains(body, `value="东门"`) || !strings.Contains(body, `data-testid="form-error"`) {
			t.Errorf("third export: %d %.300s", resp.StatusCode, body)
		}
		// The page lists one's own exports (to find the running ones
		// again), never another admin's.
		for _, job := range jobs {
			if listed := strings.Contains(body, `href="`+job+`"`); listed != (i == 0) {
				t.Errorf("client %d: job %s listed: %v", i, job, listed)
			}
		}
	}
	// Bad input is still 422, not 429.
	if resp, _ := ts.postForm(t, c, "/admin/export", exportForm("2026-12-01", "2026-11-01")); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad form while busy: %d, want 422", resp.StatusCode)
	}

	held.releaseAll()
	for _, job := range jobs {
		waitState(t, ts, c, job, "done")
	}
	startJob(t, ts, c2, exportForm("2026-11-01", "2026-12-01"))
}

func TestExportJob_ExpiryAndShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A file left by a run that did not shut down is removed on first use.
	if err := os.MkdirAll(filepath.Join(dir, "exports"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exports", "stale.part"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	held := newHeldRun()
	defer held.releaseAll()
	ts := newTestServer(t, web.Config{ExportDir: dir})
	ts.Web.SetExportRun(held.run)
	ts.Web.SetExportKeep(300*time.Millisecond, time.Hour)
	c := ts.login(t, "admin", ts.AdminPassword)

	// Never downloaded: gone after the keep period.
	held.releaseAll()
	job := startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
	<-held.started
	waitState(t, ts, c, job, "done")
	if files := exportFiles(t, dir); len(files) != 1 || strings.HasSuffix(files[0], "stale.part") {
		t.Errorf("files %q, want the export's only", files)
	}
	waitNoFiles(t, dir)

	// Shutdown cancels a running export and removes every file.
	held2 := newHeldRun()
	defer held2.releaseAll()
	ts.Web.SetExportRun(held2.run)
	ts.Web.SetExportKeep(time.Hour, time.Hour)
	for range 2 {
		startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
		<-held2.started
	}
	if len(exportFiles(t, dir)) != 2 {
		t.Fatalf("files %q", exportFiles(t, dir))
	}
	ts.Web.Close()
	if _, err := os.Stat(filepath.Join(dir, "exports")); !os.IsNotExist(err) {
		t.Errorf("export directory after Close: %v, want removed", err)
	}
}

// downloadExport runs an export through its page as a browser would:
// start it, wait for it to finish, download the file.
func downloadExport(t *testing.T, ts *testServer, c *http.Client, form map[string][]string) (*http.Response, string) {
	t.Helper()
	job := startJob(t, ts, c, form)
	waitState(t, ts, c, job, "done")
	return ts.get(t, c, job+"/file")
}

// TestExportJob_KeptFiles: however many exports are started within the
// hour, at most 20 files are kept; the oldest makes room.
func TestExportJob_KeptFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := newTestServer(t, web.Config{ExportDir: dir})
	c := ts.login(t, "admin", ts.AdminPassword)
	var jobs []string
	for range 22 {
		job := startJob(t, ts, c, exportForm("2026-11-01", "2026-12-01"))
		waitState(t, ts, c, job, "done")
		jobs = append(jobs, job)
	}
	if n := len(exportFiles(t, dir)); n != 20 {
		t.Errorf("%d files kept, want 20", n)
	}
	for i, job := range jobs {
		code, _ := getStatus(t, ts, c, job)
		if want := map[bool]int{true: http.StatusNotFound, false: http.StatusOK}[i < 2]; code != want {
			t.Errorf("job %d: status %d, want %d", i, code, want)
		}
	}
}

// runExport is what export.Run writes for an XLSX of the scans from the
// date from to the date to, read in the district's zone as the form reads
// them.
func runExport(t *testing.T, ts *testServer, from, to string) string {
	t.Helper()
	loc, err := ts.DB.Location(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := export.ParseTime("from", from, loc)
	u, _ := export.ParseTime("to", to, loc)
	var want bytes.Buffer
	if _, err := export.Run(t.Context(), ts.DB, &want, &export.Request{Kind: export.KindScans, Format: export.XLSX, From: f, To: u, Location: loc}, nil); err != nil {
		t.Fatal(err)
	}
	return want.String()
}
