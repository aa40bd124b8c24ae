package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// maxImportBytes bounds an uploaded CSV file: 100,000 residents take about
// 6 MiB, so 20 MiB leaves room without letting an upload exhaust memory.
const maxImportBytes = 20 << 20

// importChunk is how many rows go into one write transaction: large
// enough that a bulk import is fast, small enough that the gate's scan
// log never waits long for the single writer.
const importChunk = 5000

// printChunk is how many passes one bulk print page issues and renders
// (125 A4 sheets).
const printChunk = 1000

// rowError is a row of an import that was not imported, and why.
type rowError struct {
	Line int
	Msg  string
}

// importResult is the outcome of one import.
type importResult struct {
	Rows      int
	Created   int
	Updated   int
	Unchanged int
	Bad       []rowError
	Subjects  []pass.Subject // residents imported, in file order, for bulk print
	BadDigits int            // rows refused only for a mainland check digit
}

// headerAliases maps the accepted header names, English and Chinese, to
// column keys.
var headerAliases = map[string]string{
	"name": "name", "姓名": "name",
	"id_type": "id_type", "证件类型": "id_type",
	"id_number": "id_number", "证件号码": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
	"phone": "phone", "电话": "phone", "手机": "phone", "手机号": "phone", "联系电话": "phone",
	"sample_time": "sample_time", "采样时间": "sample_time",
	"result": "result", "结果": "result", "检测结果": "result",
}

// idTypeAliases maps the accepted document type values to store types;
// an empty cell is a mainland ID, by far the most common.
var idTypeAliases = map[string]string{
	"": store.IDMainland, "mainland": store.IDMainland, "身份证": store.IDMainland, "居民身份证": store.IDMainland,
	"passport": store.IDPassport, "护照": store.IDPassport,
	"other": store.IDOther, "其他": store.IDOther, "其它": store.IDOther,
}

// decodeCSV returns the file as UTF-8: a UTF-8 byte-order mark or valid
// UTF-8 is taken as it is; anything else is read as GB18030, the encoding
// Chinese Excel saves "CSV" in (a superset of GBK and GB2312).
func decodeCSV(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		return b[3:], nil
	}
	if utf8.Valid(b) {
		return b, nil
	}
	return simplifiedchinese.GB18030.NewDecoder().Bytes(b)
}

// csvRow is one data row with its line number in the file.
type csvRow struct {
	Line   int
	Fields map[string]string
}

// fileError is a problem with the file as a whole, safe to show.
type fileError struct{ msg string }

func (e *fileError) Error() string { return e.msg }

// errMultiline is a quoted field that runs past the end of its line.
var errMultiline = errors.New("line break inside a quoted field")

// csvErrorKeys are the messages of the CSV reader's errors, which are Go's
// own English ("bare \" in non-quoted-field") and name nothing a clerk
// can act on.
var csvErrorKeys = map[error]string{
	csv.ErrBareQuote:  "desk.err.csv.bare_quote",
	csv.ErrQuote:      "desk.err.csv.quote",
	csv.ErrFieldCount: "desk.err.columns",
	errMultiline:      "desk.err.csv.multiline",
}

// csvMsg is the clerk's message for a CSV error of one line.
func csvMsg(t i18n.Printer, err error) string {
	for e, key := range csvErrorKeys {
		if errors.Is(err, e) {
			return t.T(key)
		}
	}
	return t.T("desk.err.csv.other")
}

// importColumns are the header names the import form shows for each
// column: Chinese, then the English key (both are accepted).
var importColumns = map[string]string{
	"name": "姓名", "id_type": "证件类型", "id_number": "证件号码", "phone": "电话",
	"sample_time": "采样时间", "result": "结果",
}

// columnList names columns as the import form shows them, "姓名（name）".
func columnList(t i18n.Printer, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = t.T("desk.import.column", importColumns[c], c)
	}
	return strings.Join(out, t.T("desk.import.column_sep"))
}

// parseLine parses one physical line as a CSV record. Each line is parsed
// on its own: a stray quote then costs that one line, reported, instead
// of swallowing the rest of the file into one "field". The columns of
// these files never hold line breaks.
func parseLine(line string) ([]string, error) {
	cr := csv.NewReader(strings.NewReader(line))
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err == nil {
		if _, err2 := cr.Read(); err2 != io.EOF {
			return nil, errMultiline
		}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return rec, err
}

// readCSV parses the decoded file: a header row matched by name, then
// data rows. Every line that is not blank becomes a row or a row error.
func readCSV(t i18n.Printer, b []byte, need []string) ([]csvRow, []rowError, error) {
	text := string(b)
	lineNo := 0
	nextLine := func() (string, bool) {
		if text == "" {
			return "", false
		}
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		lineNo++
		return strings.TrimSuffix(line, "\r"), true
	}
	var header []string
	for header == nil {
		line, ok := nextLine()
		if !ok {
			return nil, nil, &fileError{t.T("desk.err.no_header", columnList(t, need))}
		}
		rec, err := parseLine(line)
		if err != nil {
			return nil, nil, &fileError{t.T("desk.err.csv_line", lineNo, csvMsg(t, err))}
		}
		if !isBlank(rec) {
			header = rec
		}
	}
	cols := map[string]int{}
	for i, h := range header {
		if key, ok := headerAliases[strings.ToLower(strings.TrimSpace(h))]; ok {
			if _, dup := cols[key]; !dup {
				cols[key] = i
			}
		}
	}
	var missing []string
	for _, k := range need {
		if _, ok := cols[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, nil, &fileError{t.T("desk.err.no_header", columnList(t, missing))}
	}
	width := len(header)
	var rows []csvRow
	var bad []rowError
	for {
		line, ok := nextLine()
		if !ok {
			break
		}
		rec, err := parseLine(line)
		if err != nil {
			bad = append(bad, rowError{lineNo, csvMsg(t, err)})
			continue
		}
		if isBlank(rec) {
			continue // a row of empty cells, as spreadsheets leave at the end
		}
		if len(rec) != width && !(len(rec) > width && isBlank(rec[width:])) {
			bad = append(bad, rowError{lineNo, t.T("desk.err.columns")})
			continue
		}
		f := make(map[string]string, len(cols))
		for k, i := range cols {
			if i < len(rec) {
				f[k] = strings.TrimSpace(rec[i])
			}
		}
		rows = append(rows, csvRow{lineNo, f})
	}
	return rows, bad, nil
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// fieldMsg is a row error message: the column and what is wrong with it.
func fieldMsg(t i18n.Printer, fe *store.FieldError) string {
	return t.T("desk.field."+fe.Field) + ": " + t.T(fe.Code, fe.Args...)
}

// importResidents validates every row and registers the good ones in
// batches. People are keyed by pseudonym, so a row of a known person
// updates it and re-importing a file creates no duplicates. A mainland
// number whose only fault is its check digit is refused unless
// allowBadDigit (the clerk confirmed the file's legacy numbers), as at
// the desk; refused ones are counted in BadDigits so the page can say
// how to take them.
func importResidents(ctx context.Context, db *store.DB, t i18n.Printer, b []byte, actor store.Actor, allowBadDigit bool) (*importResult, error) {
	rows, bad, err := readCSV(t, b, []string{"name", "id_number"})
	if err != nil {
		return nil, err
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.PseudonymKeyOrErr(); err != nil {
		return nil, err
	}
	key := district.SubjectKey(d)
	res := &importResult{Rows: len(rows) + len(bad), Bad: bad}
	now := db.Now()
	batch := make([]*store.Person, 0, importChunk)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		created, updated, err := db.RegisterPeople(ctx, batch, actor)
		if err != nil {
			return err
		}
		res.Created += created
		res.Updated += updated
		res.Unchanged += len(batch) - created - updated
		batch = batch[:0]
		return nil
	}
	seen := make(map[pass.Subject]bool, len(rows))
	for _, row := range rows {
		idType, ok := idTypeAliases[strings.ToLower(row.Fields["id_type"])]
		if !ok {
			res.Bad = append(res.Bad, rowError{row.Line, fieldMsg(t, &store.FieldError{Field: "id_type", Code: "desk.err.unknown"})})
			continue
		}
		r, errs := district.CheckResident(key, district.RegisterRequest{
			Name: row.Fields["name"], IDType: idType, IDNumber: row.Fields["id_number"], Phone: row.Fields["phone"],
			AllowBadCheckDigit: allowBadDigit,
		}, now)
		if errs != nil {
			msgs := make([]string, len(errs))
			for i, fe := range errs {
				msgs[i] = fieldMsg(t, fe)
				if district.IsBadCheckDigit(fe) {
					res.BadDigits++
				}
			}
			res.Bad = append(res.Bad, rowError{row.Line, strings.Join(msgs, "; ")})
			continue
		}
		if err := district.JoinCitySubject(ctx, db, d, r.IDNumber, actor); err != nil {
			return nil, err
		}
		if !seen[r.Person.Subject] {
			seen[r.Person.Subject] = true
			res.Subjects = append(res.Subjects, r.Person.Subject)
		}
		batch = append(batch, r.Person)
		if len(batch) == importChunk {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sortRowErrors(res.Bad)
	return res, nil
}

// sampleLayouts are the accepted sample time formats: ISO forms and the
// ones Chinese Excel writes, and a date alone (midnight). Times without a
// zone are the district's (store.Policy.Location), whatever zone the
// server runs in.
var sampleLayouts = []string{
	"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05",
	"2006/1/2 15:04", "2006/1/2 15:04:05", "2006年1月2日 15:04", "2006年1月2日 15:04:05",
	time.DateOnly, "2006/1/2", "2006年1月2日",
}

// parseImportTime reads a sample time from a file, in loc unless it
// carries its own offset.
func parseImportTime(v string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	for _, l := range sampleLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// testResultAliases maps accepted result values to "positive?".
var testResultAliases = map[string]bool{
	"negative": false, "阴性": false, "neg": false, "-": false,
	"positive": true, "阳性": true, "pos": true, "+": true,
}

// importTests validates every row and records the good ones in batches.
// A row of an unregistered person is reported with its line. ID numbers
// are checked as wherever they are typed: a mistyped mainland number is
// named as such rather than "not found", and a legacy one with a wrong
// check digit is looked up only when allowBadDigit, as it was registered.
func importTests(ctx context.Context, db *store.DB, t i18n.Printer, b []byte, actor store.Actor, allowBadDigit bool) (*importResult, error) {
	rows, bad, err := readCSV(t, b, []string{"id_number", "sample_time", "result"})
	if err != nil {
		return nil, err
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.PseudonymKeyOrErr(); err != nil {
		return nil, err
	}
	key := district.SubjectKey(d)
	loc, err := db.Location(ctx)
	if err != nil {
		return nil, err
	}
	res := &importResult{Rows: len(rows) + len(bad), Bad: bad}
	now := db.Now()
	limit := now.Add(time.Minute)
	var batch []store.TestResult
	var lines []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		changed, missing, err := db.RecordTests(ctx, batch, actor)
		if err != nil {
			return err
		}
		for _, i := range missing {
			res.Bad = append(res.Bad, rowError{lines[i], fieldMsg(t, &store.FieldError{Field: "id_number", Code: "desk.err.not_found"})})
		}
		res.Updated += changed
		res.Unchanged += len(batch) - changed - len(missing)
		batch, lines = batch[:0], lines[:0]
		return nil
	}
	for _, row := range rows {
		var msgs []string
		id, err := district.CheckIDNumber(row.Fields["id_number"], now, district.IDOptions(allowBadDigit)...)
		if err != nil {
			fe := &store.FieldError{Field: "id_number", Code: "desk.err.required"}
			errors.As(err, &fe)
			msgs = append(msgs, fieldMsg(t, fe))
			if district.IsBadCheckDigit(fe) {
				res.BadDigits++
			}
		}
		at, ok := parseImportTime(row.Fields["sample_time"], loc)
		switch {
		case row.Fields["sample_time"] == "":
			msgs = append(msgs, fieldMsg(t, &store.FieldError{Field: "sample_time", Code: "desk.err.required"}))
		case !ok:
			msgs = append(msgs, fieldMsg(t, &store.FieldError{Field: "sample_time", Code: "desk.err.bad_time"}))
		case at.After(limit):
			msgs = append(msgs, fieldMsg(t, &store.FieldError{Field: "sample_time", Code: "desk.err.future"}))
		}
		positive, ok := testResultAliases[strings.ToLower(row.Fields["result"])]
		if !ok {
			msgs = append(msgs, t.T("desk.field.result")+": "+t.T("desk.err.bad_result"))
		}
		if len(msgs) > 0 {
			res.Bad = append(res.Bad, rowError{row.Line, strings.Join(msgs, "; ")})
			continue
		}
		if err := district.JoinCitySubject(ctx, db, d, id, actor); err != nil {
			return nil, err
		}
		batch = append(batch, store.TestResult{Subject: pass.Pseudonym(key, id), SampledAt: at, Positive: positive})
		lines = append(lines, row.Line)
		if len(batch) == importChunk {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sortRowErrors(res.Bad)
	return res, nil
}

func sortRowErrors(e []rowError) {
	// Parse errors are found while reading, field errors after: order
	// them by line for the reader of the report.
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].Line < e[j-1].Line; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}

// importBatches holds the subjects of recent resident imports so that the
// result page can offer to print their passes without sending 100,000
// pseudonyms back and forth. Lost on restart: the page then asks to import
// the file again, which changes nothing but finds the people.
var importBatches = struct {
	sync.Mutex
	m     map[string][]pass.Subject
	order []string
}{m: map[string][]pass.Subject{}}

// maxImportBatches bounds the memory the held batches use.
const maxImportBatches = 8

func holdBatch(subjects []pass.Subject) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	importBatches.Lock()
	defer importBatches.Unlock()
	importBatches.m[id] = subjects
	importBatches.order = append(importBatches.order, id)
	if len(importBatches.order) > maxImportBatches {
		delete(importBatches.m, importBatches.order[0])
		importBatches.order = importBatches.order[1:]
	}
	return id
}

func heldBatch(id string) ([]pass.Subject, bool) {
	importBatches.Lock()
	defer importBatches.Unlock()
	s, ok := importBatches.m[id]
	return s, ok
}

func (s *Server) handleImportForm(w http.ResponseWriter, r *http.Request) {
	p := s.deskPage(r, "desk.import")
	s.render(w, r, http.StatusOK, view.ImportPage(p, view.Import{Kind: "residents"}))
}

// handleImport reads an uploaded CSV of residents or test results and
// reports every row it did not import.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	p := s.deskPage(r, "desk.import")
	m := view.Import{Kind: "residents"}
	fail := func(key string, args ...any) {
		m.Error = p.T.T(key, args...)
		s.render(w, r, http.StatusUnprocessableEntity, view.ImportPage(p, m))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxImportBytes+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set("Connection", "close")
			fail("desk.err.too_big")
			return
		}
		fail("desk.err.no_file")
		return
	}
	defer r.MultipartForm.RemoveAll()
	m.Kind = r.FormValue("kind")
	if m.Kind != "residents" && m.Kind != "tests" {
		m.Kind = "residents"
		fail("desk.err.bad_kind")
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		fail("desk.err.no_file")
		return
	}
	defer f.Close()
	if hdr.Size > maxImportBytes {
		fail("desk.err.too_big")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxImportBytes+1))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(raw) > maxImportBytes {
		fail("desk.err.too_big")
		return
	}
	b, err := decodeCSV(raw)
	if err != nil {
		fail("desk.err.encoding")
		return
	}
	var res *importResult
	start := time.Now()
	if m.Kind == "residents" {
		res, err = importResidents(r.Context(), s.db, p.T, b, actorOf(r), r.FormValue("allow_bad_check_digit") == "1")
	} else {
		res, err = importTests(r.Context(), s.db, p.T, b, actorOf(r), r.FormValue("allow_bad_check_digit") == "1")
	}
	if err != nil {
		var fe *fileError
		if errors.As(err, &fe) {
			m.Error = fe.msg
			s.render(w, r, http.StatusUnprocessableEntity, view.ImportPage(p, m))
			return
		}
		s.internalError(w, r, err)
		return
	}
	s.log.Info("import", "kind", m.Kind, "rows", res.Rows, "created", res.Created, "updated", res.Updated,
		"bad", len(res.Bad), "allow_bad_check_digit", r.FormValue("allow_bad_check_digit") == "1", "took", time.Since(start).Round(time.Millisecond), "actor", actorOf(r))
	if res.Rows == 0 {
		fail("desk.err.empty")
		return
	}
	m.Done = true
	m.Summary = p.T.T("desk.import.summary", res.Rows, res.Created, res.Updated, res.Unchanged, len(res.Bad))
	for _, e := range res.Bad {
		m.Bad = append(m.Bad, view.ImportRowError{Line: e.Line, Msg: e.Msg})
	}
	m.BadDigits = res.BadDigits
	if m.Kind == "residents" && len(res.Subjects) > 0 {
		m.Batch = holdBatch(res.Subjects)
		for from := 0; from < len(res.Subjects); from += printChunk {
			m.Parts = append(m.Parts, view.ImportPart{Page: from / printChunk, From: from + 1, To: min(from+printChunk, len(res.Subjects))})
		}
	}
	status := http.StatusOK
	if len(res.Bad) > 0 {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, view.ImportPage(p, m))
}

// handleBulkPrint issues paper passes for one page (up to printChunk
// people) of a held import and shows them as A4 sheets of 8.
func (s *Server) handleBulkPrint(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxFormBytes) {
		return
	}
	p := s.deskPage(r, "desk.print.title")
	subjects, ok := heldBatch(r.PostForm.Get("batch"))
	if !ok {
		s.fail(w, r, &Error{Code: ENotFound, Key: "desk.import.expired"})
		return
	}
	var page int
	if _, err := fmt.Sscan(r.PostForm.Get("page"), &page); err != nil || page < 0 || page*printChunk >= len(subjects) {
		s.render(w, r, http.StatusUnprocessableEntity, view.Message(p, p.T.T("desk.err.unknown")))
		return
	}
	part := subjects[page*printChunk : min((page+1)*printChunk, len(subjects))]
	start := time.Now()
	// Cards a gate here would refuse are not printed: the people are
	// listed instead, to record their tests first.
	keep, skipped, err := s.splitRefused(r.Context(), p.T, part)
	if s.statusElsewhere(w, r, p, err) {
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var cards []view.PassCard
	if len(keep) > 0 {
		cards, err = s.issueCards(r, keep, pass.Paper)
		if s.issueRefused(w, r, p, err) {
			return
		}
		if err != nil {
			s.internalError(w, r, err)
			return
		}
	}
	s.log.Info("bulk print", "passes", len(cards), "skipped", len(skipped), "took", time.Since(start).Round(time.Millisecond), "actor", actorOf(r))
	s.render(w, r, http.StatusOK, view.PrintPage(s.printPage(r), view.Print{Sheet: true, Cards: cards, Skipped: skipped, Back: "/desk/import"}))
}
