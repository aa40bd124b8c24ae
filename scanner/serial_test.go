package scanner_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/scanner"
)

func TestParseSerialSpec(t *testing.T) {
	t.Parallel()
	good := []struct {
		spec string
		want scanner.SerialConfig
	}{
		{"gate-1=/dev/serial/by-id/usb-XYZ-if00,baud=9600,suffix=cr",
			scanner.SerialConfig{Name: "gate-1", Path: "/dev/serial/by-id/usb-XYZ-if00", Baud: 9600, Suffix: "cr"}},
		{"/dev/ttyACM0", scanner.SerialConfig{Name: "ttyACM0", Path: "/dev/ttyACM0", Baud: 9600, Suffix: "cr"}},
		{"/dev/serial/by-id/usb-Honeywell_1900-if00,suffix=CRLF",
			scanner.SerialConfig{Name: "usb-Honeywell_1900-if00", Path: "/dev/serial/by-id/usb-Honeywell_1900-if00", Baud: 9600, Suffix: "crlf"}},
		{"东门=/dev/ttyUSB0,baud=115200,suffix=lf", scanner.SerialConfig{Name: "东门", Path: "/dev/ttyUSB0", Baud: 115200, Suffix: "lf"}},
		{"  lane.2=/dev/ttyUSB1 ", scanner.SerialConfig{Name: "lane.2", Path: "/dev/ttyUSB1", Baud: 9600, Suffix: "cr"}},
		// An '=' inside the path is not a name separator.
		{"gate=/dev/odd=name", scanner.SerialConfig{Name: "gate", Path: "/dev/odd=name", Baud: 9600, Suffix: "cr"}},
	}
	for _, tt := range good {
		got, err := scanner.ParseSerialSpec(tt.spec)
		if err != nil || got != tt.want {
			t.Errorf("ParseSerialSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	bad := []struct{ spec, errHas string }{
		{"", "empty"},
		{"   ", "empty"},
		{"gate=", "no device path"},
		{"=/dev/ttyUSB0", "empty name"},
		{"gate=ttyUSB0", "not absolute"},
		{"/dev/ttyUSB0,baud=fast", "baud"},
		{"/dev/ttyUSB0,baud=0", "baud"},
		{"/dev/ttyUSB0,baud=-9600", "baud"},
		{"/dev/ttyUSB0,baud=99999999999999999999", "baud"},
		{"/dev/ttyUSB0,suffix=tab", "suffix"},
		{"/dev/ttyUSB0,suffix=", "key=value"},
		{"/dev/ttyUSB0,parity=even", "unknown option"},
		{"/dev/ttyUSB0,baud", "key=value"},
		{"/dev/ttyUSB0,", "key=value"},
		{"/dev/ttyUSB0,baud=9600,baud=4800", "twice"},
		{"gate 1=/dev/ttyUSB0", "only letters"},
		{"/dev/odd=name", "give one as name=path"},
		{"gate\x00=/dev/ttyUSB0", "only letters"},
		{"<script>=/dev/ttyUSB0", "only letters"},
		{strings.Repeat("n", 65) + "=/dev/ttyUSB0", "longer than"},
		{"/dev/" + strings.Repeat("x", 2000), "longer than"},
	}
	for _, tt := range bad {
		_, err := scanner.ParseSerialSpec(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("ParseSerialSpec(%q) error = %v; want one containing %q", tt.spec, err, tt.errHas)
		}
	}
}

func FuzzParseSerialSpec(f *testing.F) {
	f.Add("gate-1=/dev/serial/by-id/usb-XYZ-if00,baud=9600,suffix=cr")
	f.Add("/dev/ttyACM0,,=,baud=")
	f.Add("=,=,=")
	f.Fuzz(func(t *testing.T, spec string) {
		cfg, err := scanner.ParseSerialSpec(spec)
		if err != nil {
			return
		}
		if cfg.Name == "" || !filepath.IsAbs(cfg.Path) || cfg.Baud < 50 || (cfg.Suffix != "cr" && cfg.Suffix != "lf" && cfg.Suffix != "crlf") {
			t.Fatalf("accepted %q as %+v", spec, cfg)
		}
	})
}

// serialRig is a reader on a pty, checking through a real store.
type serialRig struct {
	t         *testing.T
	f         *checktest.District
	name      string
	link      string // the path the reader opens: a symlink to the pty
	master    *os.File
	slave     *os.File
	inputs    *scanner.Inputs
	decisions <-chan *check.Decision
	cancel    context.CancelFunc
	done      chan error
}

func newPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// newSerialRig starts a reader on a fresh pty behind a by-id style link
// and waits until it has the port open.
func newSerialRig(t *testing.T, suffix string) *serialRig {
	t.Helper()
	f := checktest.New(t)
	r := &serialRig{t: t, f: f, name: "gate-1", inputs: scanner.NewInputs(), done: make(chan error, 1)}
	r.master, r.slave = newPTY(t)
	r.link = filepath.Join(t.TempDir(), "usb-Test_Scanner-if00")
	if err := os.Symlink(r.slave.Name(), r.link); err != nil {
		t.Fatal(err)
	}
	ch, unsub := f.Checker.Subscribe(4096)
	t.Cleanup(unsub)
	r.decisions = ch
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	rd := scanner.NewSerialReader(scanner.SerialConfig{Name: r.name, Path: r.link, Suffix: suffix}, f.Checker, r.inputs, nil)
	go func() { r.done <- rd.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	r.waitConnected(true)
	return r
}

func (r *serialRig) status() scanner.InputStatus {
	for _, s := range r.inputs.List() {
		if s.Name == r.name {
			return s
		}
	}
	return scanner.InputStatus{}
}

func (r *serialRig) waitConnected(want bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r.status().Connected == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("input never became connected=%v: %+v", want, r.status())
}

func (r *serialRig) write(s string) {
	r.t.Helper()
	if _, err := r.master.Write([]byte(s)); err != nil {
		r.t.Fatalf("write to pty: %v", err)
	}
}

// next waits for the next decision from this reader.
func (r *serialRig) next() *check.Decision {
	r.t.Helper()
	select {
	case d := <-r.decisions:
		if d.Source != r.name || d.ScanID == 0 {
			r.t.Fatalf("decision from %q, scan %d: want a logged scan from %q", d.Source, d.ScanID, r.name)
		}
		return d
	case <-time.After(5 * time.Second):
		r.t.Fatal("no decision within 5s")
		return nil
	}
}

// none asserts that no decision arrives for a while.
func (r *serialRig) none(wait time.Duration) {
	r.t.Helper()
	select {
	case d := <-r.decisions:
		r.t.Fatalf("unexpected decision %s/%s", d.Decision, d.Reason)
	case <-time.After(wait):
	}
}

func (r *serialRig) expect(decision check.Verdict, reason check.Reason) *check.Decision {
	r.t.Helper()
	d := r.next()
	if d.Decision != decision || d.Reason != reason {
		r.t.Fatalf("got %s/%s, want %s/%s", d.Decision, d.Reason, decision, reason)
	}
	return d
}

func TestSerial_Framing(t *testing.T) {
	t.Parallel()
	r := newSerialRig(t, "cr")
	pass := func() string { return r.f.Sign(r.f.Claims()) }

	for _, end := range []string{"\r", "\n", "\r\n"} {
		r.write(pass() + end)
		r.expect(check.Allow, check.ReasonOK)
	}
	r.none(100 * time.Millisecond) // CRLF made one check, not two

	t.Run("two scans in one write", func(t *testing.T) {
		r.write(pass() + "\r" + pass() + "\r")
		r.expect(check.Allow, check.ReasonOK)
		r.expect(check.Allow, check.ReasonOK)
	})
	t.Run("a scan split across writes", func(t *testing.T) {
		p := pass()
		r.write(p[:10])
		time.Sleep(150 * time.Millisecond)
		r.write(p[10:40])
		r.none(150 * time.Millisecond)
		r.write(p[40:] + "\r\n")
		r.expect(check.Allow, check.ReasonOK)
	})
	t.Run("garbage", func(t *testing.T) {
		for _, g := range []string{
			"\x00\x00\x00\x00",
			"\xff\xfe\xfd\x80\xc0",
			"\x1b[2J\x1b[H\x1b]0;pwned\x07",
			"HC1:\x00\xff\x1b[A",
			string(make([]byte, 512)),
		} {
			r.write(g + "\r")
			if d := r.next(); d.Decision != check.Deny || (d.Reason != check.ReasonNotAPass && d.Reason != check.ReasonMalformed) {
				t.Fatalf("garbage %q: got %s/%s", g, d.Decision, d.Reason)
			}
		}
		// Still alive and reading.
		r.write(pass() + "\r")
		r.expect(check.Allow, check.ReasonOK)
	})
	t.Run("over-long line", func(t *testing.T) {
		r.write(strings.Repeat("A", 10_000) + "\r" + pass() + "\r")
		r.expect(check.Deny, check.ReasonTooLong)
		r.expect(check.Allow, check.ReasonOK)
		r.none(100 * time.Millisecond)
	})
	t.Run("over-long line split across writes", func(t *testing.T) {
		for range 5 {
			r.write(strings.Repeat("B", 2_000))
		}
		r.write("\r\n")
		r.expect(check.Deny, check.ReasonTooLong)
		r.none(100 * time.Millisecond)
	})

	s := r.status()
	if s.Kind != "serial" || s.Path != r.link || !s.Connected || s.Reads != 15 || s.LastRead.IsZero() || s.Errors != 0 {
		t.Errorf("input status %+v", s)
	}
}

func TestSerial_DoubleSend(t *testing.T) {
	t.Parallel()
	r := newSerialRig(t, "cr")
	p := r.f.Sign(r.f.Claims())
	r.write(p + "\r" + p + "\r")
	r.expect(check.Allow, check.ReasonOK)
	r.write(p + "\r") // within the window of the first
	r.none(300 * time.Millisecond)
	if s := r.status(); s.Reads != 3 {
		t.Errorf("reads %d, want 3 (duplicates are read, not checked)", s.Reads)
	}
	// Another code in between is not a double send.
	q := r.f.Sign(r.f.Claims())
	r.write(q + "\r" + p + "\r")
	r.expect(check.Allow, check.ReasonOK)
	if d := r.expect(check.Allow, check.ReasonOK); !d.Repeat {
		t.Error("a repeat after another code was not flagged")
	}
	// After the window the same code is checked again, and flagged.
	time.Sleep(scanner.DoubleSendWindow + 100*time.Millisecond)
	r.write(p + "\r")
	if d := r.expect(check.Allow, check.ReasonOK); !d.Repeat {
		t.Error("a repeat after the window was not flagged")
	}
}

func TestSerial_UnplugAndReplug(t *testing.T) {
	t.Parallel()
	r := newSerialRig(t, "cr")
	r.write(r.f.Sign(r.f.Claims()) + "\r")
	r.expect(check.Allow, check.ReasonOK)

	r.master.Close()
	r.slave.Close()
	r.waitConnected(false)
	if s := r.status(); s.Errors == 0 || s.LastError == "" {
		t.Errorf("unplug left no error: %+v", s)
	}

	// The scanner comes back as another tty under the same by-id name.
	r.master, r.slave = newPTY(t)
	tmp := r.link + ".new"
	if err := os.Symlink(r.slave.Name(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.link); err != nil {
		t.Fatal(err)
	}
	r.waitConnected(true)
	r.write(r.f.Sign(r.f.Claims()) + "\r")
	r.expect(check.Allow, check.ReasonOK)
	if s := r.status(); s.Reads != 2 || !s.Connected {
		t.Errorf("after replug: %+v", s)
	}
}

// A by-id link that now leads to another device (the scanner was
// swapped while the old tty lingered) is followed without an error from
// the old port.
func TestSerial_LinkRepointed(t *testing.T) {
	t.Parallel()
	r := newSerialRig(t, "cr")
	errs := r.status().Errors
	r.master, r.slave = newPTY(t)
	tmp := r.link + ".new"
	if err := os.Symlink(r.slave.Name(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.link); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.status().Errors == errs {
		if time.Now().After(deadline) {
			t.Fatalf("repointed link not noticed: %+v", r.status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := r.status(); !strings.Contains(s.LastError, "another device") {
		t.Errorf("last error %q", s.LastError)
	}
	r.waitConnected(true)
	r.write(r.f.Sign(r.f.Claims()) + "\r")
	r.expect(check.Allow, check.ReasonOK)
}

// A burst of random bytes is checked line by line as denials and the
// reader goes on reading.
func TestSerial_RandomBurst(t *testing.T) {
	t.Parallel()
	r := newSerialRig(t, "cr")
	noise := make([]byte, 16<<10)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	r.write(string(noise) + "\r")
	r.write(r.f.Sign(r.f.Claims()) + "\r")
	// Every noise line is denied; the pass after it is still read.
	for denied := 0; ; denied++ {
		d := r.next()
		if d.Decision == check.Allow {
			t.Logf("%d noise lines denied", denied)
			break
		}
	}
}

func TestSerial_DeviceMissingAtStart(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	inputs := scanner.NewInputs()
	link := filepath.Join(t.TempDir(), "usb-Late_Scanner-if00")
	rd := scanner.NewSerialReader(scanner.SerialConfig{Name: "late", Path: link}, f.Checker, inputs, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rd.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(5 * time.Second)
	for statusOf(inputs).Errors < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", statusOf(inputs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := statusOf(inputs); s.Connected || !strings.Contains(s.LastError, "no such file") {
		t.Errorf("status %+v", s)
	}
	// Plugged in later: picked up without a restart.
	_, slave := newPTY(t)
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}
	for !statusOf(inputs).Connected {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("never connected: %+v", inputs.List())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSerial_CancelReturnsPromptly(t *testing.T) {
	f := checktest.New(t)
	before := runtime.NumGoroutine()
	for _, path := range []string{"pty", filepath.Join(t.TempDir(), "absent")} {
		inputs := scanner.NewInputs()
		if path == "pty" {
			_, slave := newPTY(t)
			path = slave.Name()
		}
		rd := scanner.NewSerialReader(scanner.SerialConfig{Name: "x", Path: path}, f.Checker, inputs, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- rd.Run(ctx) }()
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run returned %v", path, err)
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("%s: Run took %v to return", path, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run did not return", path)
		}
		if statusOf(inputs).Connected {
			t.Errorf("%s: still shown connected after Run returned", path)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d > %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSerial_RunRejectsEmptyPath(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	if err := scanner.NewSerialReader(scanner.SerialConfig{}, f.Checker, nil, nil).Run(t.Context()); err == nil {
		t.Error("Run with no path returned nil")
	}
}

// TestSerial_LatencyAndIdleCPU reports (does not assert) the time from
// a line written to the serial port to its decision logged and
// published, and the CPU a connected reader uses while idle. It is a
// measurement, so it runs only with PASSGATE_SERIAL_BENCH=1.
func TestSerial_LatencyAndIdleCPU(t *testing.T) {
	if os.Getenv("PASSGATE_SERIAL_BENCH") != "1" {
		t.Skip("set PASSGATE_SERIAL_BENCH=1 to measure serial latency and idle CPU")
	}
	r := newSerialRig(t, "cr")
	const n = 200
	passes := make([]string, n)
	for i := range passes {
		passes[i] = r.f.Sign(r.f.Claims()) + "\r"
	}
	lat := make([]time.Duration, 0, n)
	for _, p := range passes {
		start := time.Now()
		r.write(p)
		r.expect(check.Allow, check.ReasonOK)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("serial line to decision logged, %d scans: median %v, p90 %v, max %v (target median <= 5ms)",
		n, lat[n/2], lat[n*9/10], lat[n-1])

	time.Sleep(100 * time.Millisecond)
	u0 := cpuTicks(t)
	const idle = 2 * time.Second
	time.Sleep(idle)
	ticks := cpuTicks(t) - u0
	// Linux reports in clock ticks of 10ms (USER_HZ 100).
	used := time.Duration(ticks) * 10 * time.Millisecond
	t.Logf("idle reader: process CPU %v over %v (%.2f%%)", used, idle, 100*used.Seconds()/idle.Seconds())
}

// statusOf returns the only input's status, or a zero one before the
// reader has reported.
func statusOf(inputs *scanner.Inputs) scanner.InputStatus {
	if l := inputs.List(); len(l) > 0 {
		return l[0]
	}
	return scanner.InputStatus{}
}

// cpuTicks is the process's user+system time from /proc/self/stat.
func cpuTicks(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14, 15.
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + st
}
