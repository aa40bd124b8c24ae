package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"passgate/internal/jsonappend"

	"github.com/xuri/excelize/v2"
)

// column is one column of an export table.
type column struct {
	name string
	typ  cellType
}

// cellType is how JSON Lines writes a column's cells. CSV and XLSX write
// every cell as the text it is given.
type cellType uint8

const (
	// cellText, the zero value, writes the cell as a JSON string.
	cellText cellType = iota
	// cellBool cells are "true" or "false": a JSON boolean.
	cellBool
	// cellNumber cells are decimal numbers: a JSON number, null when
	// empty.
	cellNumber
	// cellJSON cells are JSON text (an audit record's detail): the value
	// itself, null when empty, a string when the text is not valid JSON.
	cellJSON
)

// table is the shape of one export kind. A writer receives the columns
// once, then rows of exactly that many cells, each as text.
type rowWriter interface {
	begin(cols []column) error
	// section starts a further table of the same file, named name: a
	// blank line and its header in CSV, a sheet of its own in XLSX, lines
	// with "type":name in JSON Lines.
	section(name string, cols []column) error
	row(cells []string) error
	// finish completes the file; nothing more may be written.
	finish() error
}

// SchemaVersion is the "v" field of every JSON Lines record. It changes
// when a column is renamed or removed or its meaning changes; adding a
// column does not change it.
const SchemaVersion = 1

// Neutralise defuses a spreadsheet formula: a cell whose text begins with
// = + - @, a tab or a carriage return is interpreted by Excel (and other
// spreadsheets) as a formula or is stripped to one; prefixing a single
// quote makes it plain text, shown with the quote. It is applied to every
// cell of CSV and XLSX exports; JSON Lines keeps values as stored.
func Neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// utf8BOM makes Excel read a CSV file as UTF-8 instead of the system's
// ANSI code page (GBK on a Chinese Windows).
const utf8BOM = "\xef\xbb\xbf"

// csvWriter writes RFC 4180 CSV with a UTF-8 BOM (so Excel reads it as
// UTF-8, not GBK) and CRLF line ends. Values are written as plain text,
// without the ="…" trick (which is a formula) or any other marker. No
// column holds a decimal number: identifiers are lower-case hex of 16 to
// 32 digits. Excel's CSV import may still take one for a number when it
// happens to be all digits or digits around a single "e" (about one
// 16-digit key ID in 700, one 24-digit pass ID in 25,000); XLSX, whose
// cells are typed as strings, is the format to use when a value must
// never be reinterpreted.
type csvWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newCSVWriter(w io.Writer) *csvWriter {
	return &csvWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (c *csvWriter) begin(cols []column) error {
	if _, err := c.w.WriteString(utf8BOM); err != nil {
		return err
	}
	return c.header(cols)
}

func (c *csvWriter) section(_ string, cols []column) error {
	if _, err := c.w.WriteString("\r\n"); err != nil {
		return err
	}
	return c.header(cols)
}

func (c *csvWriter) header(cols []column) error {
	names := make([]string, len(cols))
	for i, col := range cols {
		names[i] = col.name
	}
	return c.row(names)
}

func (c *csvWriter) row(cells []string) error {
	b := c.buf[:0]
	for i, s := range cells {
		if i > 0 {
			b = append(b, ',')
		}
		s = Neutralise(s)
		if strings.ContainsAny(s, "\",\r\n") || (s != "" && (s[0] == ' ' || s[len(s)-1] == ' ')) {
			b = append(b, '"')
			b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
			b = append(b, '"')
		} else {
			b = append(b, s...)
		}
	}
	b = append(b, '\r', '\n')
	c.buf = b
	_, err := c.w.Write(b)
	return err
}

func (c *csvWriter) finish() error { return c.w.Flush() }

// jsonlWriter writes one JSON object per line, each with "v" (the schema
// version) first, then "type" when the file has several tables, then the
// columns by name.
type jsonlWriter struct {
	w    *bufio.Writer
	typ  []byte // `,"type":"name"` or empty
	cols []column
	keys [][]byte // `,"name":` for each column
	buf  []byte
}

func newJSONLWriter(w io.Writer) *jsonlWriter {
	return &jsonlWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

// typed names the lines of the first table, for a file that will have
// sections; call it before begin.
func (j *jsonlWriter) typed(name string) {
	j.typ = appendJSONString([]byte(`,"type":`), name)
}

func (j *jsonlWriter) section(name string, cols []column) error {
	j.typed(name)
	return j.begin(cols)
}

func (j *jsonlWriter) begin(cols []column) error {
	j.cols, j.keys = cols, j.keys[:0]
	for _, c := range cols {
		k := append([]byte{','}, appendJSONString(nil, c.name)...)
		j.keys = append(j.keys, append(k, ':'))
	}
	return nil
}

func (j *jsonlWriter) row(cells []string) error {
	b := append(j.buf[:0], `{"v":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, j.typ...)
	for i, s := range cells {
		b = append(b, j.keys[i]...)
		switch j.cols[i].typ {
		case cellBool:
			b = strconv.AppendBool(b, s == "true")
		case cellNumber:
			b = appendJSONNumber(b, s)
		case cellJSON:
			b = appendJSONValue(b, s)
		case cellText:
			b = appendJSONString(b, s)
		default:
			panic(fmt.Sprintf("export: column %q has no cell type %d", j.cols[i].name, j.cols[i].typ))
		}
	}
	b = append(b, '}', '\n')
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonlWriter) finish() error { return j.w.Flush() }

// appendJSONNumber appends s as a JSON number: null when empty, a string
// when it is not a number (which no export column holds).
func appendJSONNumber(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil || !json.Valid([]byte(s)) {
		return appendJSONString(b, s)
	}
	return append(b, s...)
}

// appendJSONValue appends the JSON text s as a value, re-encoded without
// HTML escaping: records written by older versions hold "<" as "\u003c",
// which a reader of the file should not have to undo. Numbers keep their
// digits; object keys come out sorted. Empty text is null; text that is
// not JSON is appended as a string rather than lost.
func appendJSONValue(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if !json.Valid([]byte(s)) || dec.Decode(&v) != nil {
		return appendJSONString(b, s)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return appendJSONString(b, s)
	}
	return append(b, bytes.TrimSuffix(out.Bytes(), []byte("\n"))...)
}

// appendJSONString appends s as a JSON string, HTML characters as they
// are: a line of an export file is read by programs, not embedded in a
// page.
func appendJSONString(b []byte, s string) []byte { return jsonappend.TextString(b, s) }

// xlsxRowLimit is Excel's row limit per sheet, header included. A
// variable so tests can split sheets without writing a million rows.
var xlsxRowLimit = 1 << 20

// xlsxWriter writes an XLSX workbook with excelize's StreamWriter, which
// keeps rows in a temporary file rather than in memory. Every cell is a
// string cell, so identifiers and long digit strings are never turned
// into numbers. Past xlsxRowLimit rows a new sheet is started, named
// "<kind> (2)", "<kind> (3)" and so on, each with the header row. The
// sheets are written to w as a zip archive only once all rows are in:
// the archive holds the workbook's parts one after the other.
type xlsxWriter struct {
	w      io.Writer
	f      *excelize.File
	sw     *excelize.StreamWriter
	base   string
	sheets int
	rowNo  int // last row written in the current sheet
	header []any
	vals   []any
}

func newXLSXWriter(w io.Writer, sheet string) *xlsxWriter {
	return &xlsxWriter{w: w, base: sheet}
}

func (x *xlsxWriter) begin(cols []column) error {
	x.f = excelize.NewFile()
	return x.table(cols)
}

func (x *xlsxWriter) section(name string, cols []column) error {
	x.base, x.sheets = name, 0
	return x.table(cols)
}

// table starts the sheet of a table with cols.
func (x *xlsxWriter) table(cols []column) error {
	x.header = make([]any, len(cols))
	for i, c := range cols {
		x.header[i] = c.name
	}
	x.vals = make([]any, len(cols))
	return x.newSheet()
}

func (x *xlsxWriter) newSheet() error {
	if x.sw != nil {
		if err := x.sw.Flush(); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	x.sheets++
	name := x.base
	if x.sheets > 1 {
		name = fmt.Sprintf("%s (%d)", x.base, x.sheets)
	}
	if x.sw == nil {
		if err := x.f.SetSheetName("Sheet1", name); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	} else if _, err := x.f.NewSheet(name); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	x.sw = sw
	x.rowNo = 1
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return x.setRow(x.header)
}

func (x *xlsxWriter) setRow(vals []any) error {
	cell, err := excelize.CoordinatesToCellName(1, x.rowNo)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := x.sw.SetRow(cell, vals); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

func (x *xlsxWriter) row(cells []string) error {
	if x.rowNo >= xlsxRowLimit {
		if err := x.newSheet(); err != nil {
			return err
		}
	}
	x.rowNo++
	for i, s := range cells {
		x.vals[i] = Neutralise(s)
	}
	return x.setRow(x.vals)
}

func (x *xlsxWriter) finish() error {
	defer x.f.Close() // removes the stream writers' temporary files
	if err := x.sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	// File.WriteTo assembles the whole archive in a bytes.Buffer before
	// copying it out (hundreds of megabytes for a million rows). Giving it
	// a zip writer over x.w instead streams the archive: the buffer it
	// then copies stays empty. (excelize's only use of the buffer besides
	// that is to raise the version of local headers of parts over 4 GiB,
	// which a sheet of at most 1,048,576 rows of this width never is.)
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(x.w) })
	if _, err := x.f.WriteTo(io.Discard); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// abort releases a workbook that will not be finished.
func (x *xlsxWriter) abort() {
	if x.f != nil {
		_ = x.f.Close()
	}
}
