package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

var (
	shanghai = time.FixedZone("CST", 8*3600)
	day0     = time.Date(2026, 11, 1, 0, 0, 0, 0, shanghai)
)

// injected are values a resident, a device name or an operator could
// type; each must come back out of a spreadsheet export as text.
var injected = []string{"=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(A1:A2)", "\tTAB", "\rCR", "西门 入口", "普通, \"引号\"\n换行"}

func openDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// logScans logs n scans one second apart from day0, cycling sources and
// reasons through injected, and returns them as logged.
func logScans(t testing.TB, db *store.DB, n int) []*store.Scan {
	t.Helper()
	var out []*store.Scan
	for i := range n {
		s := &store.Scan{
			At:       day0.Add(time.Duration(i) * time.Second),
			Source:   injected[i%len(injected)],
			Decision: []string{"allow", "deny"}[i%2],
			Reason:   []string{"ok", "expired", "=HYPERLINK(\"x\")", "红码"}[i%4],
			Repeat:   i%3 == 0,
		}
		if i%5 != 0 {
			s.PassID = pass.ID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
			s.Subject = pass.Subject{byte(i), 0x12, 0x34}
			s.KID = pass.KeyID{9, 8, 7, 6, 5, 4, 3, byte(i)}
		}
		if err := db.LogScan(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// wantScanRow is how a scan must read back from CSV or XLSX.
func wantScanRow(s *store.Scan) []string {
	h := func(b []byte, zero bool) string {
		if zero {
			return ""
		}
		return fmt.Sprintf("%x", b)
	}
	return []string{
		s.At.In(shanghai).Format("2006-01-02T15:04:05.000+08:00"),
		Neutralise(s.Source), s.Decision, Neutralise(s.Reason), fmt.Sprint(s.Repeat),
		h(s.PassID[:], s.PassID.IsZero()), h(s.Subject[:], s.Subject.IsZero()), h(s.KID[:], s.KID == pass.KeyID{}),
		s.Appliance, fmt.Sprint(s.ID), h(s.Epoch[:], s.Epoch == [store.EpochSize]byte{}),
	}
}

var scanHeader = []string{"time", "source", "decision", "reason", "repeat", "pass_id", "subject", "issuer_key", "appliance", "appliance_scan_id", "epoch"}

func request(k Kind, f Format) *Request {
	return &Request{Kind: k, Format: f, From: day0, To: day0.AddDate(0, 1, 0), Location: shanghai}
}

func run(t *testing.T, db *store.DB, r *Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Run(t.Context(), db, &buf, r, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readCSV checks the BOM and CRLF line ends and parses the rest.
func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatalf("CSV does not start with the UTF-8 BOM: % x", b[:min(8, len(b))])
	}
	b = b[3:]
	// Every record ends in CRLF; a bare LF appears only inside a quoted
	// value (the injected "换行" source).
	if !bytes.HasSuffix(b, []byte("\r\n")) || !bytes.HasPrefix(b, []byte("time,source,")) && !bytes.Contains(b[:min(128, len(b))], []byte("\r\n")) {
		t.Fatalf("CSV is not CRLF-terminated: %q", b[:min(80, len(b))])
	}
	if n, m := bytes.Count(b, []byte("\n")), bytes.Count(b, []byte("\r\n")); n-m > bytes.Count(b, []byte("换行")) {
		t.Fatalf("%d bare LF line ends", n-m)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func readXLSX(t *testing.T, b []byte) map[string][][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][][]string{}
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		// GetRows drops trailing empty cells; pad to the header's width.
		for i := range rows {
			for len(rows[i]) < len(rows[0]) {
				rows[i] = append(rows[i], "")
			}
		}
		out[name] = rows
	}
	return out
}

func equalRows(t *testing.T, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
			t.Fatalf("row %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	scans := logScans(t, db, 40)
	want := [][]string{scanHeader}
	for _, s := range scans {
		want = append(want, wantScanRow(s))
	}
	equalRows(t, readCSV(t, run(t, db, request(KindScans, CSV))), want)
}

func TestXLSXRoundTrip(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	scans := logScans(t, db, 40)
	want := [][]string{scanHeader}
	for _, s := range scans {
		want = append(want, wantScanRow(s))
	}
	sheets := readXLSX(t, run(t, db, request(KindScans, XLSX)))
	if len(sheets) != 1 {
		t.Fatalf("sheets %v", len(sheets))
	}
	equalRows(t, sheets["scans"], want)
	// Cells are strings, so nothing is re-typed: check one ID cell's type.
	f, _ := excelize.OpenReader(bytes.NewReader(run(t, db, request(KindScans, XLSX))))
	defer f.Close()
	ct, err := f.GetCellType("scans", "F3")
	if err != nil || (ct != excelize.CellTypeInlineString && ct != excelize.CellTypeSharedString && ct != excelize.CellTypeFormula) {
		t.Errorf("pass_id cell type %v, %v; want a string", ct, err)
	}
	if ct == excelize.CellTypeFormula {
		t.Error("a cell was written as a formula")
	}
}

func TestNeutralisedEverywhere(t *testing.T) {
	t.Parallel()
	for _, v := range injected {
		n := Neutralise(v)
		switch v[0] {
		case '=', '+', '-', '@', '\t', '\r':
			if n != "'"+v {
				t.Errorf("Neutralise(%q) = %q", v, n)
			}
		default:
			if n != v {
				t.Errorf("Neutralise(%q) = %q, want unchanged", v, n)
			}
		}
	}
	// Every cell of both spreadsheet formats: no cell starts with a
	// formula trigger.
	db := openDB(t)
	logScans(t, db, 16)
	check := func(format string, rows [][]string) {
		for i, r := range rows {
			for j, c := range r {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("%s row %d col %d: %q not neutralised", format, i, j, c)
				}
			}
		}
	}
	check("csv", readCSV(t, run(t, db, request(KindScans, CSV))))
	check("xlsx", readXLSX(t, run(t, db, request(KindScans, XLSX)))["scans"])
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	scans := logScans(t, db, 20)
	lines := strings.Split(strings.TrimSuffix(string(run(t, db, request(KindScans, JSONL))), "\n"), "\n")
	if len(lines) != len(scans) {
		t.Fatalf("%d lines, want %d", len(lines), len(scans))
	}
	for i, l := range lines {
		var rec struct {
			V        int    `json:"v"`
			Time     string `json:"time"`
			Source   string `json:"source"`
			Reason   string `json:"reason"`
			Repeat   bool   `json:"repeat"`
			Decision string `json:"decision"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		s := scans[i]
		if rec.V != SchemaVersion || rec.Source != s.Source || rec.Reason != s.Reason || rec.Repeat != s.Repeat || rec.Decision != s.Decision {
			t.Errorf("line %d = %+v, scan %+v", i, rec, s)
		}
		if at, err := time.Parse(time.RFC3339, rec.Time); err != nil || !at.Equal(s.At) || !strings.HasSuffix(rec.Time, "+08:00") {
			t.Errorf("line %d time %q (%v), want %v with +08:00", i, rec.Time, err, s.At)
		}
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	scans := logScans(t, db, 64)
	r := request(KindScans, CSV)
	r.From = day0.Add(10 * time.Second)
	r.To = day0.Add(50 * time.Second)
	r.Source, r.Decision, r.Reason = injected[7], "deny", "红码"
	var want [][]string
	for _, s := range scans {
		if !s.At.Before(r.From) && s.At.Before(r.To) && s.Source == r.Source && s.Decision == r.Decision && s.Reason == r.Reason {
			want = append(want, wantScanRow(s))
		}
	}
	if len(want) == 0 {
		t.Fatal("filter selects nothing: bad fixture")
	}
	equalRows(t, readCSV(t, run(t, db, r))[1:], want)
}

func TestPassesAndStatus(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	if _, err := district.EnsureSetup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	iss, err := district.Issue(ctx, db, district.IssueRequest{Name: "张三", IDNumber: "11010519491231002X", Actor: "=王五"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetStatus(ctx, iss.Person.Subject, pass.Red, "@密接", "-李四"); err != nil {
		t.Fatal(err)
	}
	r := request(KindPasses, CSV)
	r.From, r.To = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	rows := readCSV(t, run(t, db, r))
	if len(rows) != 2 || rows[1][1] != fmt.Sprintf("%x", iss.Claims.ID[:]) || rows[1][7] != "'=王五" || rows[1][3] != "phone" || rows[1][8] != "appliance-1" {
		t.Errorf("passes export %q", rows)
	}
	r.Kind = KindStatus
	r.Format = XLSX
	sheets := readXLSX(t, run(t, db, r))
	st := sheets["status"]
	if len(st) < 2 {
		t.Fatalf("status export %q", st)
	}
	last := st[len(st)-1]
	if last[3] != "red" || last[4] != "'@密接" || last[5] != "'-李四" || last[1] != fmt.Sprintf("%x", iss.Person.Subject[:]) || last[6] != "appliance-1" {
		t.Errorf("status row %q", last)
	}
}

func TestSheetSplit(t *testing.T) {
	old := xlsxRowLimit
	xlsxRowLimit = 10 // header + 9 rows per sheet
	defer func() { xlsxRowLimit = old }()
	db := openDB(t)
	scans := logScans(t, db, 25)
	sheets := readXLSX(t, run(t, db, request(KindScans, XLSX)))
	names := []string{"scans", "scans (2)", "scans (3)"}
	if len(sheets) != len(names) {
		t.Fatalf("%d sheets, want %d", len(sheets), len(names))
	}
	var got [][]string
	for _, n := range names {
		rows := sheets[n]
		if len(rows) == 0 || len(rows) > 10 || strings.Join(rows[0], ",") != strings.Join(scanHeader, ",") {
			t.Fatalf("sheet %q: %d rows, header %q", n, len(rows), rows[0])
		}
		got = append(got, rows[1:]...)
	}
	var want [][]string
	for _, s := range scans {
		want = append(want, wantScanRow(s))
	}
	equalRows(t, got, want)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() *Request { return request(KindScans, CSV) }
	for name, mut := range map[string]func(r *Request){
		"unknown kind":       func(r *Request) { r.Kind = "audit-ish" },
		"unknown format":     func(r *Request) { r.Format = "xls" },
		"missing from":       func(r *Request) { r.From = time.Time{} },
		"reversed":           func(r *Request) { r.From, r.To = r.To, r.From },
		"empty range":        func(r *Request) { r.To = r.From },
		"absurd window":      func(r *Request) { r.To = r.From.AddDate(2, 0, 0) },
		"decision":           func(r *Request) { r.Decision = "maybe" },
		"source for passes":  func(r *Request) { r.Kind, r.Source = KindPasses, "x" },
		"reason for passes":  func(r *Request) { r.Kind, r.Reason = KindPasses, "x" },
		"decision on status": func(r *Request) { r.Kind, r.Decision = KindStatus, "allow" },
	} {
		r := ok()
		mut(r)
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := ok().Validate(); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"2026-13-01", "yesterday", "2026-11-01T08:00:00", ""} {
		if _, err := ParseTime("from", s, shanghai); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTime(%q): %v", s, err)
		}
	}
	if got, err := ParseTime("from", "2026-11-01", shanghai); err != nil || !got.Equal(day0) {
		t.Errorf("ParseTime(date) = %v, %v", got, err)
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	r := request(KindScans, CSV)
	if got, want := FileName("雁塔区", r), "雁塔区_scans_20261101-20261130.csv"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	if got := FileName("a/b:c", r); strings.ContainsAny(got, "/:") {
		t.Errorf("unsafe file name %q", got)
	}
	cd := ContentDisposition("雁塔区_scans_20261101-20261130.csv")
	want := `attachment; filename="scans_20261101-20261130.csv"; filename*=UTF-8''%E9%9B%81%E5%A1%94%E5%8C%BA_scans_20261101-20261130.csv`
	if cd != want {
		t.Errorf("ContentDisposition = %s\nwant %s", cd, want)
	}
}

// TestConcurrentConsistency exports while goroutines keep logging scans
// inside the exported range: the export holds exactly the rows its
// snapshot counted, each once and whole, and every concurrent scan
// succeeds.
func TestConcurrentConsistency(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	logScans(t, db, 3000)
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		logged  = make([]int, 4)
		scanErr = make(chan error, 4)
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := &store.Scan{At: day0.Add(time.Duration(i) * time.Millisecond), Source: fmt.Sprintf("并发%d", g), Decision: "allow", Reason: "ok"}
				if err := db.LogScan(ctx, s); err != nil {
					scanErr <- err
					return
				}
				logged[g]++
			}
		}()
	}
	for _, f := range Formats {
		var buf bytes.Buffer
		var total int64
		n, err := Run(ctx, db, &buf, request(KindScans, f), func(done, tot int64) { total = tot })
		if err != nil {
			t.Fatal(err)
		}
		if n != total {
			t.Errorf("%s: %d rows written, snapshot counted %d", f, n, total)
		}
		ids := exportedRows(t, f, buf.Bytes())
		if int64(len(ids)) != total {
			t.Errorf("%s: read back %d rows, snapshot counted %d", f, len(ids), total)
		}
		checkSnapshotRows(t, f, ids)
	}
	close(stop)
	wg.Wait()
	close(scanErr)
	for err := range scanErr {
		t.Errorf("concurrent scan failed: %v", err)
	}
	sum := 0
	for _, n := range logged {
		sum += n
	}
	if sum == 0 {
		t.Error("no scan was logged during the exports")
	}
	t.Logf("%d scans logged during three exports", sum)
}

// exportedRows reads an export in format f back, one string per row.
func exportedRows(t *testing.T, f Format, b []byte) []string {
	t.Helper()
	var ids []string
	switch f {
	case CSV:
		rows := readCSV(t, b)[1:]
		for _, r := range rows {
			if len(r) != len(scanHeader) {
				t.Fatalf("torn row %q", r)
			}
			ids = append(ids, strings.Join(r, "|"))
		}
	case JSONL:
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil || len(m) != len(scanHeader)+1 {
				t.Fatalf("torn line %q: %v", l, err)
			}
			ids = append(ids, l)
		}
	case XLSX:
		for _, r := range readXLSX(t, b)["scans"][1:] {
			ids = append(ids, strings.Join(r, "|"))
		}
	}
	return ids
}

// checkSnapshotRows checks that ids holds no duplicates, and that each
// goroutine's scans (logged one after the other) appear as a prefix of
// its sequence: a snapshot, not a mixture of moments.
func checkSnapshotRows(t *testing.T, f Format, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	perSource := map[string]int{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s: duplicated row %q", f, id)
		}
		seen[id] = true
		if strings.Contains(id, "并发") {
			for g := range 4 {
				if strings.Contains(id, fmt.Sprintf("并发%d", g)) {
					perSource[fmt.Sprint(g)]++
				}
			}
		}
	}
	if f == CSV {
		timeSource := map[string]bool{}
		for id := range seen {
			p := strings.SplitN(id, "|", 3)
			timeSource[p[0]+"|"+p[1]] = true
		}
		for g, n := range perSource {
			want := make([]string, 0, n)
			for i := range n {
				want = append(want, day0.Add(time.Duration(i)*time.Millisecond).In(shanghai).Format("2006-01-02T15:04:05.000+08:00")+"|并发"+g)
			}
			for _, w := range want {
				if !timeSource[w] {
					t.Fatalf("goroutine %s: %d scans exported but %q missing", g, n, w)
				}
			}
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	logScans(t, db, progressEvery+10)
	ctx, cancel := context.WithCancel(t.Context())
	var buf bytes.Buffer
	_, err := Run(ctx, db, &buf, request(KindScans, CSV), func(done, total int64) {
		if done > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
}
