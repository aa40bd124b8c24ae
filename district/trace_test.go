package district_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"passgate/district"
	"passgate/store"
)

func TestCheckTraceID(t *testing.T) {
	tests := []struct {
		raw  string
		want string // normalised number; "" when rejected
		code string
	}{
		{"11010519491231002X", "11010519491231002X", ""},
		{" 110105 1949 1231 002x ", "11010519491231002X", ""},
		{"１１０１０５１９４９１２３１００２ｘ", "11010519491231002X", ""}, // full-width
		{"e12345678", "E12345678", ""},                   // passport
		{"G1234", "G1234", ""},
		{"", "", "required"},
		{"   \u3000", "", "required"},
		{"110105194912310021", "", "check_digit"},
		{"110105194913310029", "", "id_birth"},
		{"11010519491231002", "11010519491231002", ""}, // 17 digits: a document number, not mainland
		{"E12", "", "doc_format"},
		{strings.Repeat("A", 33), "", "doc_format"},
		{"E1234<script>", "", "doc_format"},
		{"E1234'; DROP TABLE scans;--", "", "doc_format"},
		{"张三12345", "", "doc_format"},
		{"E1234\x00", "", "doc_format"},
		{"\xff\xfe1234", "", "doc_format"},
		{strings.Repeat("1", 129), "", "too_long"},
		{strings.Repeat(" ", 200) + "E12345", "", "too_long"},
	}
	for _, tt := range tests {
		got, err := district.CheckTraceID(tt.raw, checkNow)
		var fe *store.FieldError
		switch {
		case tt.code == "" && (err != nil || got != tt.want):
			t.Errorf("CheckTraceID(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		case tt.code != "" && (!errors.As(err, &fe) || fe.Code != "desk.err."+tt.code || fe.Field != "id_number"):
			t.Errorf("CheckTraceID(%q) error %v; want %s", tt.raw, err, tt.code)
		}
	}
}

// FuzzCheckTraceID: whatever is typed, an accepted number is 4 to 32
// upper-case ASCII letters and digits (or a valid mainland ID), and
// checking it again gives the same number.
func FuzzCheckTraceID(f *testing.F) {
	for _, s := range []string{"11010519491231002X", " 110105 19491231 002x", "E12345678", "", "\u3000", "１２３ｘ", strings.Repeat("9", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := district.CheckTraceID(raw, checkNow)
		if err != nil {
			var fe *store.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a field error", err)
			}
			return
		}
		if len(id) < 4 || len(id) > 32 || !utf8.ValidString(id) {
			t.Fatalf("accepted %q", id)
		}
		for _, r := range id {
			if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
				t.Fatalf("accepted %q with %q", id, r)
			}
		}
		if again, err := district.CheckTraceID(id, checkNow); err != nil || again != id {
			t.Fatalf("not idempotent: %q → %q, %v", id, again, err)
		}
	})
}
