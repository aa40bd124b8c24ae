package jsonappend

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// hostile are strings whose JSON form differs from their bytes: quotes,
// backslashes, every control character, what HTML and JavaScript read
// specially, and invalid UTF-8 of every kind.
var hostile = func() []string {
	s := []string{
		"", "plain", "张*明", `a"b`, `a\b`, `\"`, "</script>", "a&b<c>d",
		"line\u2028sep\u2029par", "\u2028", "\u2029\u2029", "\x7f", "tab\tnl\ncr\rbs\bff\f",
		"\xff", "\xfe\xff", "a\xc3", "\xc3\x28", "\xe2\x82", "\xe2\x28\xa1", "\xf0\x9f\x98",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xc0\xaf", "\xf4\x90\x80\x80", "😀", "\uFFFD", "\U0010FFFF",
		strings.Repeat(`"`, 100), strings.Repeat("\u2028x", 50),
	}
	for b := 0; b < 0x20; b++ {
		s = append(s, string(rune(b)), "x"+string(rune(b))+"y")
	}
	return s
}()

func TestStringIsEncodingJSON(t *testing.T) {
	for _, s := range hostile {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String([]byte("prefix"), s); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("String(%q) = %s, encoding/json writes %s", s, got[len("prefix"):], want)
		}
	}
}

func TestTextStringIsEncoderWithoutHTMLEscaping(t *testing.T) {
	for _, s := range hostile {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := TextString(nil, s); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("TextString(%q) = %s, encoding/json writes %s", s, got, want.Bytes())
		}
	}
}

func TestTimeIsEncodingJSON(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	for _, tm := range []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Date(2026, 12, 4, 16, 5, 0, 0, time.UTC),
		time.Date(2026, 12, 4, 16, 5, 0, 123456789, time.UTC), time.Date(2026, 12, 4, 16, 5, 0, 120000000, shanghai),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		want, err := json.Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Time(nil, tm); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Time(%v) = %s, %v; encoding/json writes %s", tm, got, err, want)
		}
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := json.Marshal(tm); err == nil {
			t.Fatalf("encoding/json writes %v", tm)
		}
		if got, err := Time(nil, tm); err == nil {
			t.Errorf("Time(%v) = %s, want an error as encoding/json gives", tm, got)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = String(buf[:0], "张*明 <gate-1> \"east\"")
	}
}
