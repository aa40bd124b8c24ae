package scanner_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/scanner"
)

var updateEvdev = flag.Bool("update-evdev", false, "rewrite testdata/evdev recordings")

// Key codes as the US layout places characters, written out here rather
// than taken from the package so that decoding is checked against an
// independent table.
var testKeys = func() map[byte]struct {
	code  uint16
	shift bool
} {
	m := map[byte]struct {
		code  uint16
		shift bool
	}{}
	put := func(first uint16, chars string, shift bool) {
		for i := range len(chars) {
			m[chars[i]] = struct {
				code  uint16
				shift bool
			}{first + uint16(i), shift}
		}
	}
	put(2, "1234567890", false)
	put(16, "QWERTYUIOP", true)
	put(30, "ASDFGHJKL", true)
	put(44, "ZXCVBNM", true)
	put(16, "qwertyuiop", false)
	put(30, "asdfghjkl", false)
	put(44, "zxcvbnm", false)
	put(57, " ", false)
	put(5, "$%", true) // shift 4, shift 5
	put(9, "*", true)  // shift 8
	put(13, "+", true) // shift =
	put(12, "-", false)
	put(52, "./", false)
	put(39, ":", true) // shift ;
	// The rest of the US symbols, which a scanner set to another layout
	// ends up typing.
	put(2, "!@#", true)
	put(7, "^&", true)
	put(10, "()_", true)
	put(13, "=", false)
	put(26, "[]", false)
	put(26, "{}", true)
	put(39, ";'`", false)
	put(40, "\"~", true)
	put(43, "\\", false)
	put(43, "|", true)
	put(51, ",", false)
	put(51, "<>?", true)
	return m
}()

// evrec builds a recorded input_event stream (64-bit little-endian
// layout), with a clock advancing 1 ms per key event as a scanner types.
type evrec struct {
	b      bytes.Buffer
	at     time.Duration
	rshift bool // use the right Shift key
}

func (r *evrec) event(typ, code uint16, value int32) {
	var e [24]byte
	binary.LittleEndian.PutUint64(e[0:], uint64(r.at/time.Second))
	binary.LittleEndian.PutUint64(e[8:], uint64(r.at%time.Second/time.Microsecond))
	binary.LittleEndian.PutUint16(e[16:], typ)
	binary.LittleEndian.PutUint16(e[18:], code)
	binary.LittleEndian.PutUint32(e[20:], uint32(value))
	r.b.Write(e[:])
}

// key writes a key event, with the MSC_SCAN and SYN_REPORT a real
// keyboard sends around it.
func (r *evrec) key(code uint16, value int32) {
	r.event(4, 4, 0x70000+int32(code)) // EV_MSC MSC_SCAN: ignored
	r.event(1, code, value)
	r.event(0, 0, 0)
	r.at += time.Millisecond
}

func (r *evrec) tap(code uint16, shift bool) {
	sh := uint16(42)
	if r.rshift {
		sh = 54
	}
	if shift {
		r.key(sh, 1)
	}
	r.key(code, 1)
	r.key(code, 0)
	if shift {
		r.key(sh, 0)
	}
}

func (r *evrec) typeText(t testing.TB, s string) {
	t.Helper()
	for i := range len(s) {
		k, ok := testKeys[s[i]]
		if !ok {
			t.Fatalf("no key for %q", s[i])
		}
		r.tap(k.code, k.shift)
	}
}

func (r *evrec) line(t testing.TB, s string) {
	t.Helper()
	r.typeText(t, s)
	r.tap(28, false)
}

// Keypad key codes by digit, written out independently of the package.
var testKeypad = [10]uint16{82, 79, 80, 81, 75, 76, 77, 71, 72, 73}

// altCode types code as a scanner in Alt+keypad mode does: Alt held, the
// decimal code on the keypad (with a leading 0, as Windows code pages
// want), Alt released.
func (r *evrec) altCode(code int) {
	r.key(56, 1)
	for _, c := range fmt.Sprintf("%04d", code) {
		r.key(testKeypad[c-'0'], 1)
		r.key(testKeypad[c-'0'], 0)
	}
	r.key(56, 0)
}

// altText types s in Alt+keypad mode, then the suffix as an Alt code.
func (r *evrec) altText(s string, suffix int) {
	for i := range len(s) {
		r.altCode(int(s[i]))
	}
	if suffix != 0 {
		r.altCode(suffix)
	}
}

// slowText types s as a scanner set to an inter-key delay does.
func (r *evrec) slowText(t testing.TB, s string, gap time.Duration) {
	t.Helper()
	for i := range len(s) {
		r.typeText(t, s[i:i+1])
		r.at += gap
	}
}

// ctrlTap types Ctrl+key.
func (r *evrec) ctrlTap(code uint16) {
	r.key(29, 1)
	r.tap(code, false)
	r.key(29, 0)
}

func needEventLayout(t testing.TB) {
	t.Helper()
	if scanner.EvdevEventSize != 24 || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("recordings are 64-bit little-endian input_event streams")
	}
}

func decode(t *testing.T, b []byte) []string {
	t.Helper()
	got, err := scanner.DecodeEvdev(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// Partial reads (a pipe, a short device read) must decode the same.
	// 13 bytes at a time splits records everywhere; one byte at a time is
	// tried on short streams (it is slow under the race detector).
	chunked := []io.Reader{&chunkReader{r: bytes.NewReader(b), n: 13}}
	if len(b) < 16<<10 {
		chunked = append(chunked, iotest.OneByteReader(bytes.NewReader(b)))
	}
	for _, r := range chunked {
		got1, err := scanner.DecodeEvdev(r)
		if err != nil || !slices.Equal(got, got1) {
			t.Fatalf("partial reads: %q %v, want %q", got1, err, got)
		}
	}
	return got
}

// chunkReader reads at most n bytes at a time.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// evdevCase is a key event stream and the lines it must decode to.
type evdevCase struct {
	name  string
	build func(r *evrec)
	want  []string
}

// evdevKeyCases type lines with Shift, Enter, Tab and Ctrl, at the
// speeds scanners and people type.
func evdevKeyCases(t *testing.T, good, other string) []evdevCase {
	return []evdevCase{
		{"pass typed with Shift", func(r *evrec) { r.line(t, good) }, []string{good}},
		{"right Shift", func(r *evrec) { r.rshift = true; r.line(t, good) }, []string{good}},
		{"keypad Enter", func(r *evrec) { r.typeText(t, good); r.tap(96, false) }, []string{good}},
		{"autorepeat ignored", func(r *evrec) {
			r.typeText(t, good[:10])
			r.key(42, 1)
			r.key(42, 2) // Shift autorepeat
			r.key(16, 1) // Q
			r.key(16, 2)
			r.key(16, 2)
			r.key(16, 0)
			r.key(42, 0)
			r.line(t, good[10:])
		}, []string{good[:10] + "Q" + good[10:]}},
		{"gap mid-scan resets", func(r *evrec) {
			r.typeText(t, good[:40])
			r.at += 600 * time.Millisecond
			r.line(t, good)
		}, []string{good}},
		{"slow scanner, keys 150 ms apart, stays one line", func(r *evrec) {
			r.slowText(t, "PG1:AB", 150*time.Millisecond)
			r.tap(28, false)
		}, []string{"PG1:AB"}},
		{"slow scanner, keys 450 ms apart, stays one line", func(r *evrec) {
			r.slowText(t, "PG1:AB", 450*time.Millisecond)
			r.tap(28, false)
		}, []string{"PG1:AB"}},
		{"Tab ends a line", func(r *evrec) { r.typeText(t, good); r.tap(15, false); r.typeText(t, other); r.tap(15, false) }, []string{good, other}},
		{"Ctrl+J ends a line", func(r *evrec) { r.typeText(t, good); r.ctrlTap(36) }, []string{good}},
		{"Ctrl+M ends a line", func(r *evrec) { r.typeText(t, good); r.ctrlTap(50) }, []string{good}},
		{"right Ctrl+J ends a line", func(r *evrec) { r.typeText(t, good); r.key(97, 1); r.tap(36, false); r.key(97, 0) }, []string{good}},
		{"other Ctrl keys type nothing", func(r *evrec) {
			r.typeText(t, "PG1:")
			r.ctrlTap(30) // Ctrl+A
			r.line(t, "AB")
		}, []string{"PG1:AB"}},
	}
}

// evdevAltAndNoiseCases type with Alt codes and the keypad, and add the
// noise a device or a hostile one sends: garbage codes, repeats, dropped
// events, over-long lines.
func evdevAltAndNoiseCases(t *testing.T, good, other, long string) []evdevCase {
	return []evdevCase{
		{"Alt+keypad pass with Alt+013", func(r *evrec) { r.altText(good, 13) }, []string{good}},
		{"Alt+keypad pass with Alt+010 and Alt+009", func(r *evrec) { r.altText(good, 10); r.altText(other, 9) }, []string{good, other}},
		{"Alt+keypad pass with Enter", func(r *evrec) { r.altText(good, 0); r.tap(28, false) }, []string{good}},
		{"Alt+keypad with right Alt, no leading zero", func(r *evrec) {
			for _, c := range "PG1" {
				r.key(100, 1)
				for _, d := range fmt.Sprint(int(c)) {
					r.tap(testKeypad[d-'0'], false)
				}
				r.key(100, 0)
			}
			r.tap(28, false)
		}, []string{"PG1"}},
		{"Alt code beyond ASCII is no character of a pass", func(r *evrec) {
			r.typeText(t, "PG1:")
			r.altCode(200)
			r.tap(28, false)
		}, []string{"PG1:?"}},
		{"Alt code of five digits", func(r *evrec) {
			r.typeText(t, "PG1:")
			r.key(56, 1)
			for range 5 {
				r.tap(testKeypad[6], false)
			}
			r.key(56, 0)
			r.tap(28, false)
		}, []string{"PG1:?"}},
		{"Alt with other keys types nothing", func(r *evrec) {
			r.typeText(t, "PG1:")
			r.key(56, 1)
			r.tap(30, false) // Alt+A
			r.tap(15, false) // Alt+Tab: not a line end
			r.key(56, 0)
			r.line(t, "AB")
		}, []string{"PG1:AB"}},
		{"Alt alone types nothing", func(r *evrec) { r.key(56, 1); r.key(56, 0); r.line(t, "PG1") }, []string{"PG1"}},
		{"keypad digits without Alt", func(r *evrec) {
			r.typeText(t, "PG1:")
			r.tap(testKeypad[4], false)
			r.tap(testKeypad[2], false)
			r.tap(96, false)
		}, []string{"PG1:42"}},
		{"gap before Enter drops the fragment", func(r *evrec) {
			r.typeText(t, "PG1:AB")
			r.at += time.Second
			r.tap(28, false)
			r.line(t, other)
		}, []string{other}},
		{"garbage codes and types", func(r *evrec) {
			r.typeText(t, good[:5])
			r.key(0, 1)
			r.key(200, 1)
			r.key(0xffff, 1)
			r.key(29, 1) // Ctrl: types nothing
			r.key(29, 0)
			r.event(2, 0, 5)       // EV_REL
			r.event(1, 30, -7)     // a key value no driver sends
			r.event(0xffff, 30, 1) // unknown type
			r.line(t, good[5:])
		}, []string{good}},
		{"Enter alone", func(r *evrec) { r.tap(28, false); r.tap(96, false) }, nil},
		{"double send within 2 s counts once", func(r *evrec) {
			r.line(t, good)
			r.at += 500 * time.Millisecond
			r.line(t, good)
			r.line(t, other)
		}, []string{good, other}},
		{"same code again after 2 s", func(r *evrec) {
			r.line(t, good)
			r.at += 2500 * time.Millisecond
			r.line(t, good)
		}, []string{good, good}},
		{"SYN_DROPPED drops the line", func(r *evrec) {
			r.typeText(t, good[:20])
			r.event(0, 3, 0) // SYN_DROPPED
			r.key(30, 1)     // before SYN_REPORT: ignored
			r.event(0, 0, 0)
			r.line(t, other)
		}, []string{other}},
		{"over-long line cut to MaxInput+1", func(r *evrec) { r.line(t, long) }, []string{long[:check.MaxInput+1]}},
		{"lower case without Shift", func(r *evrec) { r.line(t, "pg1:ab") }, []string{"pg1:ab"}},
	}
}

func TestEvdevDecode(t *testing.T) {
	t.Parallel()
	needEventLayout(t)
	fx := checktest.New(t)
	good := fx.Sign(fx.Claims())
	other := fx.Sign(fx.Claims())

	long := strings.Repeat("A", check.MaxInput+200)
	cases := append(evdevKeyCases(t, good, other), evdevAltAndNoiseCases(t, good, other, long)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r evrec
			r.at = 1700000000 * time.Second
			tc.build(&r)
			if got := decode(t, r.b.Bytes()); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}

	t.Run("lines are checked", func(t *testing.T) {
		var r evrec
		r.line(t, good)
		r.line(t, long)
		lines := decode(t, r.b.Bytes())
		if len(lines) != 2 {
			t.Fatalf("got %d lines", len(lines))
		}
		d, err := fx.Checker.Check(fx.Ctx, "kiosk-1", lines[0])
		if err != nil || !d.Allowed() || d.Source != "kiosk-1" {
			t.Fatalf("decoded pass: %+v %v", d, err)
		}
		d, err = fx.Checker.Check(fx.Ctx, "kiosk-1", lines[1])
		if err != nil || d.Reason != check.ReasonTooLong {
			t.Fatalf("over-long line: %+v %v", d, err)
		}
	})

	t.Run("stream cut inside a record", func(t *testing.T) {
		var r evrec
		r.line(t, good)
		r.typeText(t, "PG1")
		b := r.b.Bytes()
		got, err := scanner.DecodeEvdev(bytes.NewReader(b[:len(b)-7]))
		if !errors.Is(err, io.ErrUnexpectedEOF) || !slices.Equal(got, []string{good}) {
			t.Fatalf("got %q %v", got, err)
		}
	})
}

// TestEvdevRecorded replays the committed recordings in testdata/evdev:
// each NAME.bin decodes to the lines in NAME.want (one per line, then
// "error: …" if the stream ends badly). go test -run TestEvdevRecorded
// -update-evdev rewrites them.
func TestEvdevRecorded(t *testing.T) {
	t.Parallel()
	needEventLayout(t)
	dir := filepath.Join("testdata", "evdev")
	if *updateEvdev {
		writeRecordings(t, dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) < 4 {
		t.Fatalf("recordings: %v %d", err, len(files))
	}
	for _, bin := range files {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(bin, ".bin") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			if got := transcript(b); got != string(want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func transcript(b []byte) string {
	lines, unterminated, err := scanner.DecodeEvdevCount(bytes.NewReader(b))
	var s strings.Builder
	for _, l := range lines {
		s.WriteString(l + "\n")
	}
	if unterminated > 0 {
		fmt.Fprintf(&s, "unterminated: %d keys\n", unterminated)
	}
	if err != nil {
		s.WriteString("error: " + err.Error() + "\n")
	}
	return s.String()
}

func writeRecordings(t *testing.T, dir string) {
	fx := checktest.New(t)
	good := fx.Sign(fx.Claims())
	// Each recording is written with the lines it was made to type, not
	// with what the decoder makes of it, so the files hold the intent.
	type recording struct {
		build func(r *evrec)
		want  string
	}
	recs := map[string]recording{
		"pass-shift": {func(r *evrec) { r.line(t, good) }, good + "\n"},
		"pass-repeat": {func(r *evrec) {
			r.typeText(t, good[:30])
			r.key(42, 1)
			r.key(47, 1) // V, then autorepeat
			r.key(47, 2)
			r.key(47, 2)
			r.key(47, 0)
			r.key(42, 0)
			r.line(t, good[30:])
		}, good[:30] + "V" + good[30:] + "\n"},
		"gap-mid-scan": {func(r *evrec) {
			r.typeText(t, good[:50])
			r.at += time.Second
			r.line(t, good)
		}, good + "\nunterminated: 50 keys\n"},
		"slow-scanner": {func(r *evrec) {
			r.slowText(t, good, 120*time.Millisecond)
			r.tap(28, false)
		}, good + "\n"},
		"alt-keypad":    {func(r *evrec) { r.altText(good, 13) }, good + "\n"},
		"tab-suffix":    {func(r *evrec) { r.typeText(t, good); r.tap(15, false) }, good + "\n"},
		"ctrl-j-suffix": {func(r *evrec) { r.typeText(t, good); r.ctrlTap(36) }, good + "\n"},
		"no-suffix": {func(r *evrec) {
			r.typeText(t, good)
			r.at += time.Second
			r.typeText(t, good)
		}, fmt.Sprintf("unterminated: %d keys\n", 2*len(good))},
		"garbage-codes": {func(r *evrec) {
			r.key(240, 1)
			r.key(0x2ff, 1)
			r.event(3, 0, 100) // EV_ABS
			r.line(t, "PG1:GARBAGE")
			r.key(1, 1) // Esc
		}, "PG1:GARBAGE\n"},
		"cut-record": {func(r *evrec) {
			r.line(t, good)
			r.typeText(t, "PG1:")
			r.b.Truncate(r.b.Len() - 11)
		}, good + "\nunterminated: 4 keys\nerror: unexpected EOF\n"},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, rec := range recs {
		var r evrec
		r.at = 1764000000 * time.Second
		rec.build(&r)
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), r.b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".want"), []byte(rec.want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseEvdevSpec(t *testing.T) {
	t.Parallel()
	good := map[string]scanner.EvdevConfig{
		"kiosk-1=/dev/input/by-id/usb-Scanner-event-kbd": {Name: "kiosk-1", Path: "/dev/input/by-id/usb-Scanner-event-kbd"},
		" 东门 = /dev/input/event3 ":                       {Name: "东门", Path: "/dev/input/event3"},
	}
	for spec, want := range good {
		got, err := scanner.ParseEvdevSpec(spec)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", spec, got, err)
		}
	}
	for _, spec := range []string{
		"", "=", "kiosk", "kiosk=", "=/dev/input/event0", "k=/dev/ttyUSB0", "k=/dev/input/../sda",
		"k=dev/input/event0", "k=/dev/input//event0", "a\nb=/dev/input/event0", strings.Repeat("n", 65) + "=/dev/input/event0",
		"k=/etc/passwd",
	} {
		if c, err := scanner.ParseEvdevSpec(spec); err == nil {
			t.Errorf("%q accepted: %+v", spec, c)
		}
	}
}

// TestGrabEvdev_RealFD issues the grab ioctl on real descriptors that are
// not input devices: the kernel answers ENOTTY, which proves the call
// reached it with the descriptor.
func TestGrabEvdev_RealFD(t *testing.T) {
	t.Parallel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := scanner.GrabEvdev(pr); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("grab on a pipe: %v, want ENOTTY", err)
	}
	// The clock request's error is no longer dropped.
	if err := scanner.SetEvdevClock(pr); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("clock on a pipe: %v, want ENOTTY", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "event0"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := scanner.GrabEvdev(f); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("grab on a file: %v, want ENOTTY", err)
	}
	f.Close()
	if err := scanner.GrabEvdev(f); err == nil {
		t.Fatal("grab on a closed file succeeded")
	}
}

// TestGrabEvdev_Device grabs a real scanner named by
// PASSGATE_EVDEV_TEST_DEVICE. It never picks a device by itself: grabbing
// the machine's keyboard would take it away.
func TestGrabEvdev_Device(t *testing.T) {
	path := os.Getenv("PASSGATE_EVDEV_TEST_DEVICE")
	if path == "" {
		t.Skip("set PASSGATE_EVDEV_TEST_DEVICE=/dev/input/by-id/… to grab a scanner")
	}
	dev, err := scanner.OpenEvdev(path)
	if err != nil {
		t.Fatal(err) // includes EVIOCSCLOCKID, which a device accepts
	}
	defer dev.Close()
	// A second grab of a grabbed device is refused with EBUSY.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := scanner.GrabEvdev(f); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("second grab: %v, want EBUSY", err)
	}
}

// waitInput polls inputs until cond holds for the named input.
func waitInput(t *testing.T, in *scanner.Inputs, name string, cond func(scanner.InputStatus) bool) scanner.InputStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, s := range in.List() {
			if s.Name == name && cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("input %s: condition not met: %+v", name, in.List())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runReader(t *testing.T, r *scanner.EvdevReader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

// TestEvdevRun_NoDevice runs the real opener on paths that are not
// scanners: the failure is reported, and no other path is ever opened.
func TestEvdevRun_NoDevice(t *testing.T) {
	t.Parallel()
	regular := filepath.Join(t.TempDir(), "event-regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, wantErr string }{
		{filepath.Join(t.TempDir(), "missing", "event9"), "no such file"},
		{regular, "not a character device"},
		// A character device that is not an input device: the grab is
		// issued and refused.
		{"/dev/null", "inappropriate ioctl"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			in := scanner.NewInputs()
			r := scanner.NewEvdevReader(scanner.EvdevConfig{Name: "kiosk-9", Path: tc.path}, nil, in, nil)
			var mu sync.Mutex
			var opened []string
			scanner.SetEvdevOpener(r, func(p string) (io.ReadCloser, error) {
				mu.Lock()
				opened = append(opened, p)
				mu.Unlock()
				return scanner.OpenEvdev(p)
			})
			stop := runReader(t, r)
			s := waitInput(t, in, "kiosk-9", func(s scanner.InputStatus) bool { return s.Errors >= 2 })
			stop()
			if s.Connected || s.Kind != "evdev" || s.Path != tc.path || !strings.Contains(s.LastError, tc.wantErr) {
				t.Fatalf("status %+v", s)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range opened {
				if p != tc.path {
					t.Fatalf("opened %q, configured %q", p, tc.path)
				}
			}
		})
	}
	t.Run("empty config", func(t *testing.T) {
		if err := scanner.NewEvdevReader(scanner.EvdevConfig{}, nil, nil, nil).Run(t.Context()); err == nil {
			t.Fatal("Run without a path succeeded")
		}
	})
}

// TestEvdevRun feeds recorded streams through pipes standing in for the
// device: scans are checked with the device's name, an unplug (the pipe
// closing) is reported, and the reader reopens the device and goes on.
func TestEvdevRun(t *testing.T) {
	t.Parallel()
	needEventLayout(t)
	fx := checktest.New(t)
	in := scanner.NewInputs()
	const path = "/dev/input/by-id/usb-Test-Scanner-event-kbd"
	r := scanner.NewEvdevReader(scanner.EvdevConfig{Name: "kiosk-1", Path: path}, fx.Checker, in, nil)
	devices := make(chan *io.PipeWriter, 4)
	var mu sync.Mutex
	var opened []string
	scanner.SetEvdevOpener(r, func(p string) (io.ReadCloser, error) {
		mu.Lock()
		opened = append(opened, p)
		mu.Unlock()
		pr, pw := io.Pipe()
		devices <- pw
		return pr, nil
	})
	feed, cancel := fx.Checker.Subscribe(8)
	defer cancel()
	stop := runReader(t, r)
	defer stop()

	next := func() *check.Decision {
		t.Helper()
		select {
		case d := <-feed:
			return d
		case <-time.After(5 * time.Second):
			t.Fatal("no decision")
			return nil
		}
	}
	dev := <-devices
	waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool { return s.Connected })
	good := fx.Sign(fx.Claims())
	var rec evrec
	rec.line(t, good)
	rec.line(t, good) // double send: dropped
	rec.b.Write(bytes.Repeat([]byte{0xff, 0x13, 0, 7}, 100))
	if _, err := dev.Write(rec.b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if d := next(); !d.Allowed() || d.Source != "kiosk-1" {
		t.Fatalf("first scan: %+v", d)
	}
	// Unplug.
	dev.CloseWithError(unix.ENODEV)
	waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool {
		return !s.Connected && strings.Contains(s.LastError, "no such device")
	})
	dev = <-devices
	waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool { return s.Connected })
	other := fx.Sign(fx.Claims())
	rec = evrec{}
	rec.line(t, other)
	rec.line(t, strings.Repeat("9", check.MaxInput+10))
	if _, err := dev.Write(rec.b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if d := next(); !d.Allowed() || d.Repeat {
		t.Fatalf("scan after replug: %+v", d)
	}
	if d := next(); d.Reason != check.ReasonTooLong {
		t.Fatalf("over-long scan: %+v", d)
	}
	select {
	case d := <-feed:
		t.Fatalf("unexpected decision %+v", d)
	case <-time.After(50 * time.Millisecond):
	}
	s := waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool { return s.Reads == 3 })
	if !s.Connected || s.LastRead.IsZero() {
		t.Fatalf("status %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range opened {
		if p != path {
			t.Fatalf("opened %q", p)
		}
	}
}

// FuzzEvdevDecode: arbitrary bytes never panic, and every line is
// non-empty printable ASCII of at most MaxInput+1 bytes.
func FuzzEvdevDecode(f *testing.F) {
	var r evrec
	r.line(f, "PG1:ABC 123$%*+-./:")
	f.Add(r.b.Bytes())
	f.Add(r.b.Bytes()[:30])
	f.Add([]byte{})
	var alt evrec
	alt.altText("PG1:A", 13)
	alt.altCode(99999)
	alt.typeText(f, "PG1")
	alt.ctrlTap(36)
	alt.typeText(f, "AB")
	alt.tap(15, false)
	alt.key(56, 1) // Alt held at the end
	alt.tap(testKeypad[1], false)
	f.Add(alt.b.Bytes())
	if seeds, _ := filepath.Glob(filepath.Join("testdata", "evdev", "*.bin")); len(seeds) > 0 {
		for _, s := range seeds {
			// Small recordings only: the fuzzer mutates short inputs best.
			if b, err := os.ReadFile(s); err == nil && len(b) <= 8<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, unterminated, _ := scanner.DecodeEvdevCount(bytes.NewReader(b))
		// Every key is counted at most once: typed into a line or given up.
		if keys := len(b) / scanner.EvdevEventSize; unterminated < 0 || unterminated > keys {
			t.Fatalf("%d keys given up from %d events", unterminated, keys)
		}
		for _, l := range lines {
			if l == "" || len(l) > check.MaxInput+1 {
				t.Fatalf("line of %d bytes", len(l))
			}
			for i := range len(l) {
				if l[i] < 0x20 || l[i] > 0x7e {
					t.Fatalf("non-printable byte %#x", l[i])
				}
			}
		}
	})
}

// BenchmarkEvdevDecode decodes a recorded scan of a real pass.
func BenchmarkEvdevDecode(b *testing.B) {
	needEventLayout(b)
	fx := checktest.New(b)
	var r evrec
	r.line(b, fx.Sign(fx.Claims()))
	stream := r.b.Bytes()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		if lines, err := scanner.DecodeEvdev(bytes.NewReader(stream)); err != nil || len(lines) != 1 {
			b.Fatal(lines, err)
		}
	}
}

// TestEvdevRun_NoLineEnd: a scanner whose suffix is off types a pass and
// nothing more. No key follows to close the fragment; the reader gives
// it up after EvdevGap on its own and counts the keys on the input's
// status, where staff see it, and nothing is checked.
func TestEvdevRun_NoLineEnd(t *testing.T) {
	t.Parallel()
	needEventLayout(t)
	fx := checktest.New(t)
	in := scanner.NewInputs()
	r := scanner.NewEvdevReader(scanner.EvdevConfig{Name: "kiosk-1", Path: "/dev/input/event9"}, fx.Checker, in, nil)
	devices := make(chan *os.File, 1)
	scanner.SetEvdevOpener(r, func(string) (io.ReadCloser, error) {
		// An os.Pipe, like a device, has read deadlines.
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		devices <- pw
		return pr, nil
	})
	feed, cancel := fx.Checker.Subscribe(8)
	defer cancel()
	stop := runReader(t, r)
	defer stop()
	dev := <-devices
	defer dev.Close()
	waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool { return s.Connected })

	good := fx.Sign(fx.Claims())
	var rec evrec
	rec.at = time.Duration(time.Now().UnixNano())
	rec.typeText(t, good)
	if _, err := dev.Write(rec.b.Bytes()); err != nil {
		t.Fatal(err)
	}
	st := waitInput(t, in, "kiosk-1", func(s scanner.InputStatus) bool { return s.Unterminated > 0 })
	if st.Unterminated != int64(len(good)) || st.LastUnterminated.IsZero() || st.Reads != 0 {
		t.Fatalf("status %+v, want %d keys without a line end and no read", st, len(good))
	}
	select {
	case d := <-feed:
		t.Fatalf("a fragment was checked: %+v", d)
	case <-time.After(100 * time.Millisecond):
	}
	// The same scanner with its suffix fixed reads normally.
	rec = evrec{at: rec.at + 2*time.Second}
	rec.line(t, good)
	if _, err := dev.Write(rec.b.Bytes()); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-feed:
		if !d.Allowed() {
			t.Fatalf("scan after the fix: %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no decision after the fix")
	}
}
