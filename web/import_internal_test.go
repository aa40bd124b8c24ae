package web

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"passgate/web/i18n"
)

// goCSVText is text of the csv package's own errors, which a clerk must
// never see.
var goCSVText = regexp.MustCompile(`(?i)bare "|non-quoted|quoted-field|extraneous|wrong number of fields|parse error`)

// TestReadCSV_Messages checks that every CSV problem is told in the page's
// language, with its line, and that missing columns are named as the form
// shows them.
func TestReadCSV_Messages(t *testing.T) {
	t.Parallel()
	need := []string{"name", "id_number"}
	for _, lang := range i18n.Langs {
		p := i18n.Printer{Lang: lang}
		for _, tc := range []struct {
			name     string
			file     string
			fileErr  string // the whole file's error, "" for none
			rowLine  int    // the line of the one row error, 0 for none
			rowError string
		}{
			{"BareQuoteRow", "name,id_number\n张\"三,110\n", "", 2, p.T("desk.err.csv.bare_quote")},
			{"UnclosedQuoteRow", "name,id_number\nx,y\n\"张三,110\n", "", 3, p.T("desk.err.csv.quote")},
			{"TextAfterQuote", "name,id_number\n\"张三\"x,110\n", "", 2, p.T("desk.err.csv.quote")},
			{"BareQuoteHeader", "na\"me,id_number\n张三,110\n", p.T("desk.err.csv_line", 1, p.T("desk.err.csv.bare_quote")), 0, ""},
			{"HeaderAfterBlankLines", "\n\n\"name,id_number\n", p.T("desk.err.csv_line", 3, p.T("desk.err.csv.quote")), 0, ""},
			{"MissingColumns", "phone\n123\n", "", 0, ""}, // checked by name below
			{"Empty", "", p.T("desk.err.no_header", columnList(p, need)), 0, ""},
		} {
			t.Run(string(lang)+"/"+tc.name, func(t *testing.T) {
				_, bad, err := readCSV(p, []byte(tc.file), need)
				switch {
				case tc.name == "MissingColumns":
					if err == nil {
						t.Fatal("no error")
					}
					want := []string{p.T("desk.import.column", "姓名", "name"), p.T("desk.import.column", "证件号码", "id_number")}
					for _, w := range want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("%q does not name %q", err, w)
						}
					}
				case tc.fileErr != "":
					if err == nil || err.Error() != tc.fileErr {
						t.Fatalf("file error %v, want %q", err, tc.fileErr)
					}
				default:
					if err != nil || len(bad) != 1 || bad[0].Line != tc.rowLine || bad[0].Msg != tc.rowError {
						t.Fatalf("err %v, rows %+v; want line %d %q", err, bad, tc.rowLine, tc.rowError)
					}
				}
				for _, b := range bad {
					if goCSVText.MatchString(b.Msg) {
						t.Errorf("Go's text shown: %q", b.Msg)
					}
				}
				if err != nil && goCSVText.MatchString(err.Error()) {
					t.Errorf("Go's text shown: %q", err)
				}
			})
		}
	}
}

// FuzzReadCSV feeds hostile files to the import's reader: it must not
// panic, must report only lines of the file, and never show Go's text.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"name,id_number\n张三,110\n", "name,id_number\n\"a\"b,1\n", "\"", "a\"b\n\"\n", "\xef\xbb\xbfname\r\n",
		"name,id_number\n\"x\ny\",1\n", "证件号码,姓名\n1,2,3\n", ",,,\n\n\n",
	} {
		f.Add([]byte(s))
	}
	p := i18n.Printer{Lang: i18n.ZH}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 || !utf8.Valid(b) {
			return
		}
		lines := strings.Count(string(b), "\n") + 1
		rows, bad, err := readCSV(p, b, []string{"name", "id_number"})
		if err != nil && goCSVText.MatchString(err.Error()) {
			t.Fatalf("Go's text shown: %q", err)
		}
		for _, e := range bad {
			if e.Line < 2 || e.Line > lines || goCSVText.MatchString(e.Msg) {
				t.Fatalf("row error %+v (file of %d lines)", e, lines)
			}
		}
		for _, r := range rows {
			if r.Line < 2 || r.Line > lines {
				t.Fatalf("row at line %d of %d", r.Line, lines)
			}
		}
	})
}
