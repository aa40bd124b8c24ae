package scanner_test

import (
	"reflect"
	"strings"
	"testing"

	"passgate/scanner"
)

type frameOut struct {
	Line    string
	TooLong bool
}

// frameChunks feeds chunks to a new framer of cap max and collects lines.
func frameChunks(max int, chunks ...[]byte) []frameOut {
	f := scanner.NewFramer(max)
	var out []frameOut
	for _, c := range chunks {
		f.Write(c, func(line []byte, tooLong bool) {
			out = append(out, frameOut{string(line), tooLong})
		})
	}
	return out
}

// referenceFrames is the framing rule written plainly: split on CR and
// LF, drop empty lines, keep max+1 bytes of an over-long line. A line
// still open at the end of the stream is not emitted.
func referenceFrames(max int, data []byte) []frameOut {
	var out []frameOut
	start := 0
	for i, b := range data {
		if b != '\r' && b != '\n' {
			continue
		}
		line := data[start:i]
		start = i + 1
		if len(line) == 0 {
			continue
		}
		if len(line) > max {
			out = append(out, frameOut{string(line[:max+1]), true})
		} else {
			out = append(out, frameOut{string(line), false})
		}
	}
	return out
}

func TestFramer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A", 20)
	tests := []struct {
		name   string
		max    int
		chunks []string
		want   []frameOut
	}{
		{"CR", 16, []string{"abc\r"}, []frameOut{{"abc", false}}},
		{"LF", 16, []string{"abc\n"}, []frameOut{{"abc", false}}},
		{"CRLF", 16, []string{"abc\r\n"}, []frameOut{{"abc", false}}},
		{"CRLF split between writes", 16, []string{"abc\r", "\ndef\r", "\n"}, []frameOut{{"abc", false}, {"def", false}}},
		{"two in one write", 16, []string{"abc\rdef\r"}, []frameOut{{"abc", false}, {"def", false}}},
		{"split across writes", 16, []string{"ab", "c", "\r"}, []frameOut{{"abc", false}}},
		{"mixed terminators", 16, []string{"a\rb\nc\r\nd\n\re\r\r"}, []frameOut{{"a", false}, {"b", false}, {"c", false}, {"d", false}, {"e", false}}},
		{"empty lines ignored", 16, []string{"\r\n\r\n\n\n\r\r"}, nil},
		{"no terminator yet", 16, []string{"abc"}, nil},
		{"exactly the cap", 16, []string{strings.Repeat("B", 16) + "\r"}, []frameOut{{strings.Repeat("B", 16), false}}},
		{"one past the cap", 16, []string{strings.Repeat("B", 17) + "\r"}, []frameOut{{strings.Repeat("B", 17), true}}},
		{"over-long then normal", 16, []string{long, long + "\rnext\r"}, []frameOut{{long[:17], true}, {"next", false}}},
		{"NULs and high bytes kept", 16, []string{"\x00\xff\x1b[A\r"}, []frameOut{{"\x00\xff\x1b[A", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chunks [][]byte
			for _, c := range tt.chunks {
				chunks = append(chunks, []byte(c))
			}
			if got := frameChunks(tt.max, chunks...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFramer_Ends(t *testing.T) {
	t.Parallel()
	f := scanner.NewFramer(16)
	f.Write([]byte("a\rb\nc\r\nd\r"), func([]byte, bool) {})
	f.Write([]byte("\n"), func([]byte, bool) {})
	cr, lf, crlf := f.Ends()
	if cr != 1 || lf != 1 || crlf != 2 {
		t.Errorf("ends cr=%d lf=%d crlf=%d, want 1 1 2", cr, lf, crlf)
	}
}

func TestFramer_ResetDropsPartialLine(t *testing.T) {
	t.Parallel()
	f := scanner.NewFramer(16)
	var got []string
	emit := func(l []byte, _ bool) { got = append(got, string(l)) }
	f.Write([]byte("stale"), emit)
	if f.Pending() != 5 {
		t.Fatalf("pending %d, want 5", f.Pending())
	}
	f.Reset()
	f.Write([]byte("fresh\r"), emit)
	if !reflect.DeepEqual(got, []string{"fresh"}) {
		t.Errorf("got %q", got)
	}
}

// FuzzFrame feeds arbitrary bytes in arbitrary chunks: the framer never
// panics, no line exceeds the cap, and the result does not depend on how
// the stream was chunked.
func FuzzFrame(f *testing.F) {
	f.Add([]byte("abc\rdef\n"), []byte{1, 2, 3})
	f.Add([]byte("HC1:6BF\r\n"), []byte{0})
	f.Add([]byte(strings.Repeat("x", 100)+"\r"+"ok\n"), []byte{7, 50})
	f.Add([]byte("\x00\xff\x1b[2J\r\r\n\n"), []byte{1})
	f.Add([]byte{}, []byte{})
	const max = 16
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > 1<<16 {
			return
		}
		// Cut data into chunks whose sizes come from cuts.
		var chunks [][]byte
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = int(cuts[i%len(cuts)])%len(rest) + 1
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got := frameChunks(max, chunks...)
		for _, g := range got {
			if len(g.Line) == 0 || len(g.Line) > max+1 || (!g.TooLong && len(g.Line) > max) || (g.TooLong && len(g.Line) != max+1) {
				t.Fatalf("bad line %q (too long %v)", g.Line, g.TooLong)
			}
			if strings.ContainsAny(g.Line, "\r\n") {
				t.Fatalf("line holds a terminator: %q", g.Line)
			}
		}
		if want := referenceFrames(max, data); !reflect.DeepEqual(got, want) {
			t.Fatalf("chunked %q: got %+v, want %+v", chunks, got, want)
		}
	})
}
