package scanner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"passgate/check"
	"passgate/scanner/keymap"

	"golang.org/x/sys/unix"
)

// The evdev reader takes a USB keyboard-wedge scanner away from the
// console of a headless kiosk: it opens the scanner's /dev/input event
// device, grabs it exclusively, turns key codes back into the characters
// the scanner typed and checks each line.

// ioctl requests (linux/input.h).
const (
	// evIOCGrab is EVIOCGRAB, _IOW('E', 0x90, int): with a non-zero
	// argument no other reader (the console, X, a login prompt) receives
	// the device's events while we hold it.
	evIOCGrab = 0x40044590
	// evIOCSClockID is EVIOCSCLOCKID, _IOW('E', 0xa0, int): event times on
	// CLOCK_MONOTONIC, so that a wall clock step mid-scan is not taken for
	// a gap.
	evIOCSClockID = 0x400445a0
)

// Event types and codes (linux/input-event-codes.h).
const (
	evSyn          = 0
	evKey          = 1
	synReport      = 0
	synDropped     = 3 // the kernel's buffer overflowed: events were lost
	keyValueUp     = 0
	keyValueDown   = 1
	keyValueRepeat = 2
)

// evdevEventSize is sizeof(struct input_event): a struct timeval of two
// C longs, then type, code (uint16) and value (int32). 24 bytes on 64-bit
// Linux.
const evdevEventSize = 2*strconv.IntSize/8 + 8

// Evdev timing and backoff.
const (
	// EvdevGap resets a scan whose keys are this far apart: a scanner types
	// a code in one burst, so a longer pause means the earlier keys were
	// a fragment (a partial read, a scanner without a line end). Fast
	// scanners send a key every few ms, but some are set to an
	// inter-key delay of 100-200 ms for slow hosts; half a second keeps
	// those, and a fragment is still counted within a second.
	EvdevGap = 500 * time.Millisecond
	// EvdevRepeatWindow drops an identical line from the same device
	// within this time: cheap scanners send a code twice.
	EvdevRepeatWindow = 2 * time.Second

	// evdevQueue is how many lines may wait for their check: scans come
	// seconds apart, so a full queue means checks are failing to finish.
	evdevQueue = 16

	evdevMinBackoff = 100 * time.Millisecond
	evdevMaxBackoff = 5 * time.Second
)

// EvdevConfig configures one evdev keyboard-wedge scanner.
type EvdevConfig struct {
	Name string // scan source in the log and on screens
	Path string // event device, best a stable /dev/input/by-id/… name
}

// ParseEvdevSpec parses "name=path", as in
// "kiosk-1=/dev/input/by-id/usb-Scanner-event-kbd". The path must lie
// under /dev/input/: the reader grabs the device exclusively, and a
// mistyped path must not take a keyboard or anything else away from the
// machine.
func ParseEvdevSpec(spec string) (EvdevConfig, error) {
	name, path, ok := strings.Cut(spec, "=")
	name, path = strings.TrimSpace(name), strings.TrimSpace(path)
	if !ok || name == "" || path == "" {
		return EvdevConfig{}, fmt.Errorf("evdev input %q: want name=/dev/input/…", spec)
	}
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return EvdevConfig{}, fmt.Errorf("evdev input %q: name must be at most 64 printable characters", spec)
	}
	if filepath.Clean(path) != path || !strings.HasPrefix(path, "/dev/input/") {
		return EvdevConfig{}, fmt.Errorf("evdev input %q: path must be a clean path under /dev/input/", spec)
	}
	return EvdevConfig{Name: name, Path: path}, nil
}

// EvdevReader reads one evdev keyboard-wedge scanner and checks every
// line it types.
type EvdevReader struct {
	cfg    EvdevConfig
	c      *check.Checker
	inputs *Inputs
	log    *slog.Logger
	// open opens and grabs the configured device; tests replace it to
	// feed recorded streams.
	open func(path string) (io.ReadCloser, error)
}

// NewEvdevReader returns a reader for cfg that checks lines with c and
// reports its state into inputs (Kind "evdev"). inputs and log may be nil.
func NewEvdevReader(cfg EvdevConfig, c *check.Checker, inputs *Inputs, log *slog.Logger) *EvdevReader {
	if inputs == nil {
		inputs = NewInputs()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EvdevReader{cfg: cfg, c: c, inputs: inputs, log: log.With("input", cfg.Name, "path", cfg.Path), open: openEvdev}
}

// Run reads the device until ctx ends. When the device cannot be opened
// or goes away (unplugged), it is reported disconnected and reopened with
// a backoff from 100 ms doubling to 5 s, so a replugged scanner resumes
// without a restart. Run returns nil when ctx ends, and an error only for
// a configuration it can never read.
func (r *EvdevReader) Run(ctx context.Context) error {
	if r.cfg.Name == "" || r.cfg.Path == "" {
		return errors.New("evdev input: name and path are required")
	}
	r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
		s.Kind, s.Path = "evdev", r.cfg.Path
	})
	// Lines are checked off the read loop: a check waits for the scan log
	// to be durable, and while it waits the kernel's small per-client
	// buffer (a few dozen events for a keyboard) would overflow under the
	// next scan and lose it.
	lines := make(chan string, evdevQueue)
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for l := range lines {
			r.check(ctx, l)
		}
	}()
	defer func() {
		close(lines)
		<-checked
	}()
	backoff := evdevMinBackoff
	lastErr := ""
	for {
		connected, err := r.session(ctx, lines)
		r.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			// The device worked: a new failure starts the backoff over.
			backoff, lastErr = evdevMinBackoff, ""
		}
		r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
			s.Errors++
			s.LastError = err.Error()
		})
		// A scanner left unplugged fails the same way every few seconds:
		// say so once, not every time.
		if msg := err.Error(); msg != lastErr {
			r.log.Warn("evdev input unavailable", "err", err, "retry", backoff)
			lastErr = msg
		} else {
			r.log.Debug("evdev input still unavailable", "err", err, "retry", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, evdevMaxBackoff)
	}
}

// session opens the device once and reads it until it fails or ctx ends.
// connected reports whether the device was opened.
func (r *EvdevReader) session(ctx context.Context, lines chan<- string) (connected bool, err error) {
	dev, err := r.open(r.cfg.Path)
	if err != nil {
		return false, err
	}
	// Closing the device is what interrupts a blocked read when ctx ends.
	stop := context.AfterFunc(ctx, func() { dev.Close() })
	defer func() {
		if stop() {
			dev.Close()
		}
	}()
	r.setConnected(true)
	r.log.Info("evdev input connected")
	var d keyDecoder
	err = readEvdev(dev, &d, func(line string) {
		now := time.Now()
		select {
		case lines <- line:
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
				s.Reads++
				s.LastRead = now
			})
		default:
			r.log.Error("evdev scan dropped: checks are not keeping up")
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
				s.Errors++
				s.LastError = "scan dropped: checks are not keeping up"
			})
		}
	}, func(keys int) {
		// Keys and no line end: a scanner set to no suffix or to one
		// not read as a line end. Nothing is checked, so without this
		// count such a scanner would look idle.
		now := time.Now()
		r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
			s.Unterminated += int64(keys)
			s.LastUnterminated = now
		})
		r.log.Warn("evdev keys without a line end: set the scanner's suffix to Enter", "keys", keys)
	})
	if err == nil {
		// The kernel never ends an event device with EOF; a closed pipe
		// or file is as gone as an unplugged scanner.
		err = io.EOF
	}
	return true, fmt.Errorf("read %s: %w", r.cfg.Path, err)
}

// check checks one line typed by the scanner.
func (r *EvdevReader) check(ctx context.Context, line string) {
	if r.c == nil {
		return
	}
	if _, err := r.c.Check(ctx, r.cfg.Name, line); err != nil && ctx.Err() == nil {
		r.log.Error("evdev check", "err", err)
		r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
			s.Errors++
			s.LastError = err.Error()
		})
	}
}

func (r *EvdevReader) setConnected(on bool) {
	r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
		if s.Connected != on || s.Since.IsZero() {
			s.Connected, s.Since = on, time.Now()
		}
	})
}

// openEvdev opens path read-only and grabs it. Only the configured path
// ever reaches it.
func openEvdev(path string) (io.ReadCloser, error) {
	// os.OpenFile puts a character device into the runtime poller, so a
	// read blocks without a thread spinning (an idle reader costs no CPU)
	// and Close wakes it.
	// O_NOCTTY: should the path name a terminal after all, opening it
	// must not make it ours.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		if err == nil {
			err = errors.New("not a character device")
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := grabEvdev(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("grab %s: %w", path, err)
	}
	// Key gaps are measured on event times: on the wall clock a step
	// (NTP, a kiosk without RTC setting its time) would split or join
	// scans. Every evdev device since Linux 3.4 accepts it.
	if err := setEvdevClock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("set monotonic clock on %s: %w", path, err)
	}
	return f, nil
}

// setEvdevClock puts f's event times on CLOCK_MONOTONIC. EVIOCSCLOCKID
// reads its argument through a pointer, unlike EVIOCGRAB.
func setEvdevClock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetPointerInt(int(fd), evIOCSClockID, unix.CLOCK_MONOTONIC)
	}); err != nil {
		return err
	}
	return ierr
}

// grabEvdev takes f's device exclusively. The grab ends when f is closed.
func grabEvdev(f *os.File) error {
	return evdevIoctl(f, evIOCGrab, 1)
}

// evdevIoctl issues an ioctl whose argument is an int passed by value (as
// EVIOCGRAB reads it: a pointer to 0 would still be "grab").
func evdevIoctl(f *os.File, req uint, arg int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), req, arg) }); err != nil {
		return err
	}
	return ierr
}

// inputEvent is one decoded struct input_event.
type inputEvent struct {
	at    time.Duration // timestamp, from the kernel's clock origin
	typ   uint16
	code  uint16
	value int32
}

// parseEvent decodes one native-endian struct input_event of
// evdevEventSize bytes.
func parseEvent(b []byte) inputEvent {
	var sec, usec int64
	n := strconv.IntSize / 8
	if n == 8 {
		sec, usec = int64(binary.NativeEndian.Uint64(b)), int64(binary.NativeEndian.Uint64(b[8:]))
	} else {
		sec, usec = int64(int32(binary.NativeEndian.Uint32(b))), int64(int32(binary.NativeEndian.Uint32(b[4:])))
	}
	b = b[2*n:]
	return inputEvent{
		// Saturating arithmetic is not needed for real devices; hostile
		// recorded bytes only yield odd (never panicking) timestamps.
		at:    time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond,
		typ:   binary.NativeEndian.Uint16(b),
		code:  binary.NativeEndian.Uint16(b[2:]),
		value: int32(binary.NativeEndian.Uint32(b[4:])),
	}
}

// readEvdev reads input_event records from rd into d until rd fails,
// calling emit for each complete line and dropped with the number of keys
// typed without a line end (a fragment that timed out, or was cut off by
// the end of the stream). It returns nil at a clean EOF and
// io.ErrUnexpectedEOF when the stream stops inside a record. A device
// always returns whole records; a recorded stream may be cut anywhere,
// so partial reads are carried over. When rd has read deadlines (a
// device, a pipe), a fragment is given up EvdevGap after its last key
// even if no other key follows, so a scanner sending no line end shows
// at once.
func readEvdev(rd io.Reader, d *keyDecoder, emit func(line string), dropped func(keys int)) error {
	buf := make([]byte, 64*evdevEventSize)
	have := 0
	dl, _ := rd.(interface{ SetReadDeadline(time.Time) error })
	report := func() {
		if d.dropped > 0 {
			dropped(d.dropped)
			d.dropped = 0
		}
	}
	for {
		if dl != nil {
			var at time.Time
			if d.pending() {
				at = time.Now().Add(EvdevGap)
			}
			if dl.SetReadDeadline(at) != nil {
				dl = nil // not pollable after all: fragments wait for the next key
			}
		}
		n, err := rd.Read(buf[have:])
		have += n
		off := 0
		for ; have-off >= evdevEventSize; off += evdevEventSize {
			if f, ok := d.feed(parseEvent(buf[off : off+evdevEventSize])); ok {
				emit(f)
			}
		}
		have = copy(buf, buf[off:have])
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			d.giveUp()
			report()
			continue
		}
		if err != nil {
			d.giveUp()
			report()
			if errors.Is(err, io.EOF) {
				if have > 0 {
					return io.ErrUnexpectedEOF
				}
				return nil
			}
			return err
		}
		report()
	}
}

// Alt+keypad entry: with Alt held, digits typed on the keypad give a
// character's code, typed when Alt is released (the DOS and Windows
// convention, which scanners offer for hosts of unknown layout). A code
// is at most four digits (Alt+0nnn picks the Windows code page); codes
// outside ASCII are not part of any pass.
const maxAltDigits = 4

// keyDecoder turns key events into lines, as the scanner typed them with
// the US layout. The zero value is ready.
type keyDecoder struct {
	lshift, rshift bool
	lctrl, rctrl   bool
	lalt, ralt     bool
	altCode        int // digits typed on the keypad while Alt is held
	altDigits      int
	buf            []byte
	keys           int           // keys typed into the current line (buf keeps check.MaxInput+1)
	start          time.Duration // time of the first key of buf
	last           time.Duration // time of the last key event, when buf is not empty
	prev           string        // last line emitted, for the repeat window
	prevAt         time.Duration
	hasPrev        bool
	dropping       bool // after SYN_DROPPED, until SYN_REPORT
	dropped        int  // keys given up without a line end, not yet reported
}

// pending reports whether keys wait for their line end.
func (d *keyDecoder) pending() bool { return d.keys > 0 || d.altDigits > 0 }

// giveUp abandons the keys typed since the last line end and counts them:
// no line end came in time.
func (d *keyDecoder) giveUp() {
	d.dropped += d.keys
	if d.keys == 0 && d.altDigits > 0 {
		d.dropped++
	}
	d.reset()
}

func (d *keyDecoder) reset() {
	d.buf, d.keys, d.altCode, d.altDigits = d.buf[:0], 0, 0, 0
}

// modifier returns the state of the modifier key code, or nil for
// other keys.
func (d *keyDecoder) modifier(code uint16) *bool {
	switch code {
	case keymap.LeftShift:
		return &d.lshift
	case keymap.RightShift:
		return &d.rshift
	case keymap.LeftCtrl:
		return &d.lctrl
	case keymap.RightCtrl:
		return &d.rctrl
	case keymap.LeftAlt:
		return &d.lalt
	case keymap.RightAlt:
		return &d.ralt
	}
	return nil
}

// Key codes of the keypad digits, by digit.
var keypadDigit = map[uint16]int{82: 0, 79: 1, 80: 2, 81: 3, 75: 4, 76: 5, 77: 6, 71: 7, 72: 8, 73: 9}

// feed takes one event and returns a complete line when it ends one.
// Enter, keypad Enter, Tab, Ctrl+J (line feed) and Ctrl+M (carriage
// return), typed or given as an Alt code, end a line: scanners offer all
// of them as the suffix.
func (d *keyDecoder) feed(ev inputEvent) (string, bool) {
	if ev.typ == evSyn && ev.code == synDropped {
		// Events were lost: the line is incomplete and the modifier state
		// unknown. Scanners release modifiers within a line, so "up" is
		// the safe guess. The kernel's rule is to ignore everything up to
		// the next SYN_REPORT.
		d.reset()
		d.lshift, d.rshift, d.lctrl, d.rctrl, d.lalt, d.ralt = false, false, false, false, false, false
		d.dropping = true
		return "", false
	}
	if d.dropping {
		d.dropping = !(ev.typ == evSyn && ev.code == synReport)
		return "", false
	}
	if ev.typ != evKey {
		return "", false
	}
	down := ev.value == keyValueDown
	if d.pending() {
		if gap := ev.at - d.last; gap > EvdevGap || gap < -EvdevGap {
			d.giveUp()
		}
	}
	if m := d.modifier(ev.code); m != nil {
		if ev.value == keyValueRepeat {
			return "", false
		}
		*m = down
		// Releasing Alt types the character whose code was entered.
		if (ev.code == keymap.LeftAlt || ev.code == keymap.RightAlt) && !d.lalt && !d.ralt && d.altDigits > 0 {
			code := d.altCode
			d.altCode, d.altDigits = 0, 0
			return d.typed(ev.at, altChar(code))
		}
		return "", false
	}
	// A scanner never holds a key: autorepeat would only duplicate one.
	if !down {
		return "", false
	}
	if d.lalt || d.ralt {
		if v, ok := keypadDigit[ev.code]; ok {
			if d.altDigits == 0 {
				d.start = ev.at
			}
			d.altDigits++
			if d.altDigits <= maxAltDigits && d.altCode >= 0 {
				d.altCode = d.altCode*10 + v
			} else {
				d.altCode = -1 // too many digits: not a character
			}
			d.last = ev.at
		}
		return "", false // Alt with any other key types nothing
	}
	if d.lctrl || d.rctrl {
		switch ev.code {
		case keymap.J:
			return d.typed(ev.at, '\n')
		case keymap.M:
			return d.typed(ev.at, '\r')
		}
		return "", false // other control keys type nothing
	}
	switch ev.code {
	case keymap.Enter, keymap.KPEnter:
		return d.typed(ev.at, '\r')
	case keymap.Tab:
		return d.typed(ev.at, '\t')
	}
	if v, ok := keypadDigit[ev.code]; ok {
		return d.typed(ev.at, byte('0'+v))
	}
	return d.typed(ev.at, keymap.USChar(ev.code, d.lshift || d.rshift))
}

// altChar is the character of an Alt code: ASCII, or '?' (never in a
// pass, so the line is refused as not a pass rather than silently
// shortened) for codes beyond it.
func altChar(code int) byte {
	if code < 1 || code > 0x7e {
		return '?'
	}
	return byte(code)
}

// typed takes one character typed at time at: a line end ('\r', '\n',
// '\t') ends the line, another control character is ignored.
func (d *keyDecoder) typed(at time.Duration, ch byte) (string, bool) {
	switch {
	case ch == '\r' || ch == '\n' || ch == '\t':
		if d.keys == 0 {
			return "", false
		}
		line := string(d.buf)
		d.reset()
		// The window runs from the end of one line to the start of the
		// next, so that a long pass taking a second to type is still
		// caught when it is sent twice.
		if since := d.start - d.prevAt; d.hasPrev && line == d.prev && since >= 0 && since <= EvdevRepeatWindow {
			return "", false
		}
		d.prev, d.prevAt, d.hasPrev = line, at, true
		return line, true
	case ch < 0x20:
		return "", false
	}
	// One byte past MaxInput is kept, and the rest dropped until the line
	// end: the checker then refuses the line as too long rather than
	// checking a cut-off prefix.
	if d.keys == 0 {
		d.start = at
	}
	d.keys++
	if len(d.buf) <= check.MaxInput {
		d.buf = append(d.buf, ch)
	}
	d.last = at
	return "", false
}
