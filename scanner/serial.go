package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"passgate/check"

	"go.bug.st/serial"
)

// Serial reader defaults and limits.
const (
	// DefaultBaud suits most USB-serial scanners; CDC-ACM scanners
	// ignore the rate altogether.
	DefaultBaud = 9600
	// DoubleSendWindow is how long an identical frame from the same
	// device counts as the scanner sending one code twice (cheap
	// scanners do) rather than as a second scan.
	DoubleSendWindow = 2 * time.Second

	serialReadTimeout = 500 * time.Millisecond
	serialMinBackoff  = 100 * time.Millisecond
	serialMaxBackoff  = 5 * time.Second
	maxSerialSpec     = 1024
	maxInputName      = 64
)

// Line suffixes a scanner can be programmed to send after a code.
var serialSuffixes = map[string]bool{"cr": true, "lf": true, "crlf": true}

// SerialConfig configures one serial scanner.
type SerialConfig struct {
	Name   string // source of its scans in the log; unique among inputs
	Path   string // device path, preferably a stable /dev/serial/by-id/... name
	Baud   int
	Suffix string // the scanner's programmed line suffix: "cr", "lf" or "crlf"
}

// ParseSerialSpec parses a serial input given on the command line or in
// the environment:
//
//	[name=]path[,baud=N][,suffix=cr|lf|crlf]
//
// for example gate-1=/dev/serial/by-id/usb-XYZ-if00,baud=9600,suffix=cr.
// The name defaults to the path's base name, the baud to 9600 and the
// suffix to cr.
func ParseSerialSpec(spec string) (SerialConfig, error) {
	cfg := SerialConfig{Baud: DefaultBaud, Suffix: "cr"}
	if len(spec) > maxSerialSpec {
		return cfg, fmt.Errorf("serial input: spec longer than %d bytes", maxSerialSpec)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return cfg, errors.New("serial input: empty spec")
	}
	fields := strings.Split(spec, ",")
	head := fields[0]
	// A name is whatever precedes the first '=' unless that looks like
	// part of a path.
	if name, path, ok := strings.Cut(head, "="); ok && !strings.Contains(name, "/") {
		if name == "" {
			return cfg, fmt.Errorf("serial input %q: empty name before '='", spec)
		}
		cfg.Name, cfg.Path = name, path
	} else {
		cfg.Path = head
	}
	if cfg.Path == "" {
		return cfg, fmt.Errorf("serial input %q: no device path", spec)
	}
	if !filepath.IsAbs(cfg.Path) {
		return cfg, fmt.Errorf("serial input %q: device path %q is not absolute (for example /dev/serial/by-id/...)", spec, cfg.Path)
	}
	derived := cfg.Name == ""
	if derived {
		cfg.Name = filepath.Base(cfg.Path)
	}
	if err := checkInputName(cfg.Name); err != nil {
		if derived {
			return cfg, fmt.Errorf("serial input %q: %w; give one as name=path", spec, err)
		}
		return cfg, fmt.Errorf("serial input %q: %w", spec, err)
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		key = strings.ToLower(key)
		if !ok || val == "" {
			return cfg, fmt.Errorf("serial input %q: option %q is not key=value", spec, f)
		}
		if seen[key] {
			return cfg, fmt.Errorf("serial input %q: %s given twice", spec, key)
		}
		seen[key] = true
		switch key {
		case "baud":
			n, err := strconv.Atoi(val)
			if err != nil || n < 50 || n > 4_000_000 {
				return cfg, fmt.Errorf("serial input %q: baud %q is not a number from 50 to 4000000", spec, val)
			}
			cfg.Baud = n
		case "suffix":
			s := strings.ToLower(val)
			if !serialSuffixes[s] {
				return cfg, fmt.Errorf("serial input %q: suffix %q is not cr, lf or crlf", spec, val)
			}
			cfg.Suffix = s
		default:
			return cfg, fmt.Errorf("serial input %q: unknown option %q (want baud or suffix)", spec, key)
		}
	}
	return cfg, nil
}

// checkInputName accepts names that read well in logs and on screens:
// letters (any script), digits and - _ . :
func checkInputName(name string) error {
	if len(name) > maxInputName {
		return fmt.Errorf("name longer than %d bytes", maxInputName)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.:", r) {
			return fmt.Errorf("name %q: only letters, digits and - _ . : are allowed", name)
		}
	}
	return nil
}

// SerialReader reads codes from one serial scanner (CDC-ACM or a
// USB-serial bridge) and checks each line. It survives unplugging: on a
// read error or a vanished device it closes the port and reopens it with
// backoff, and reports its state into Inputs all along.
type SerialReader struct {
	cfg    SerialConfig
	c      *check.Checker
	inputs *Inputs
	log    *slog.Logger

	framer *Framer
	// Double-send suppression: the last frame checked and when.
	last   string
	lastAt time.Time
	warned bool // suffix mismatch already reported
}

// NewSerialReader returns a reader for cfg that checks lines with c and
// reports its state into inputs under cfg.Name. A zero Baud or empty
// Suffix takes the default.
func NewSerialReader(cfg SerialConfig, c *check.Checker, inputs *Inputs, log *slog.Logger) *SerialReader {
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if cfg.Suffix == "" {
		cfg.Suffix = "cr"
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(cfg.Path)
	}
	if inputs == nil {
		inputs = NewInputs()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SerialReader{
		cfg: cfg, c: c, inputs: inputs,
		log:    log.With("input", cfg.Name, "path", cfg.Path),
		framer: NewFramer(check.MaxInput),
	}
}

// Run reads and checks lines until ctx ends, then returns nil. It blocks;
// callers run it in a goroutine of its own, one per scanner. A missing
// or failing device is not an error: Run keeps retrying, so a scanner
// plugged in later starts working without a restart.
func (r *SerialReader) Run(ctx context.Context) error {
	if r.cfg.Path == "" {
		return errors.New("serial input: no device path")
	}
	r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
		s.Kind, s.Path, s.Connected, s.Since = "serial", r.cfg.Path, false, time.Now()
	})
	backoff := serialMinBackoff
	lastErr := ""
	for ctx.Err() == nil {
		port, id, err := r.open()
		if err != nil {
			// A scanner left unplugged would log every few seconds;
			// log only when the failure changes.
			if msg := err.Error(); msg != lastErr {
				r.log.Warn("serial scanner unavailable, retrying", "err", err)
				lastErr = msg
			}
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) { s.Errors++; s.LastError = err.Error() })
		} else {
			lastErr = ""
			start := time.Now()
			r.log.Info("serial scanner connected", "baud", r.cfg.Baud)
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) { s.Connected, s.Since = true, start })
			err := r.read(ctx, port, id)
			port.Close()
			now := time.Now()
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
				s.Connected, s.Since = false, now
				if err != nil {
					s.Errors++
					s.LastError = err.Error()
				}
			})
			if ctx.Err() != nil {
				break
			}
			r.log.Warn("serial scanner disconnected, reconnecting", "err", err, "connected_for", now.Sub(start).Round(time.Millisecond))
			// A link that held for a while earns a quick reconnect; one
			// that fails right after opening keeps backing off.
			if now.Sub(start) > serialMaxBackoff {
				backoff = serialMinBackoff
			}
		}
		// Jitter keeps several scanners on one hub from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(backoff*2, serialMaxBackoff)
	}
	r.inputs.Update(r.cfg.Name, func(s *InputStatus) {
		if s.Connected {
			s.Connected, s.Since = false, time.Now()
		}
	})
	return nil
}

// deviceID identifies the device node a path leads to, so a reader can
// tell that its device vanished or was replaced under the same name.
type deviceID struct{ dev, ino, rdev uint64 }

func statDevice(path string) (deviceID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return deviceID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return deviceID{}, nil
	}
	return deviceID{dev: uint64(st.Dev), ino: st.Ino, rdev: uint64(st.Rdev)}, nil
}

func (r *SerialReader) open() (serial.Port, deviceID, error) {
	port, err := serial.Open(r.cfg.Path, &serial.Mode{BaudRate: r.cfg.Baud})
	if err != nil {
		return nil, deviceID{}, fmt.Errorf("open %s: %w", r.cfg.Path, err)
	}
	// Reads wake up now and then to notice a device that vanished
	// without an error and a cancelled context; a timeout is no error.
	if err := port.SetReadTimeout(serialReadTimeout); err != nil {
		port.Close()
		return nil, deviceID{}, fmt.Errorf("set read timeout on %s: %w", r.cfg.Path, err)
	}
	id, err := statDevice(r.cfg.Path)
	if err != nil {
		port.Close()
		return nil, deviceID{}, fmt.Errorf("stat %s: %w", r.cfg.Path, err)
	}
	return port, id, nil
}

// read reads from port until ctx ends or the device fails or vanishes.
func (r *SerialReader) read(ctx context.Context, port serial.Port, id deviceID) error {
	// Closing the port wakes a blocked Read at once, so cancellation does
	// not wait for the read timeout.
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	r.framer.Reset()
	buf := make([]byte, 4096)
	for {
		n, err := port.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", r.cfg.Path, err)
		}
		if n == 0 {
			// Timeout. A by-id link is removed on unplug, or may now
			// lead to another device; either way this port is done.
			cur, err := statDevice(r.cfg.Path)
			if err != nil {
				return fmt.Errorf("device vanished: %w", err)
			}
			if cur != id {
				return errors.New("device path now leads to another device")
			}
			continue
		}
		r.framer.Write(buf[:n], func(line []byte, tooLong bool) { r.line(ctx, line, tooLong) })
		r.checkSuffix()
	}
}

// line handles one complete frame.
func (r *SerialReader) line(ctx context.Context, line []byte, tooLong bool) {
	now := time.Now()
	text := string(line)
	r.inputs.Update(r.cfg.Name, func(s *InputStatus) { s.Reads++; s.LastRead = now })
	if text == r.last && now.Sub(r.lastAt) < DoubleSendWindow {
		r.log.Debug("serial scanner sent the same code twice; checked once", "bytes", len(text))
		return
	}
	// Compared with the last frame checked, not the last received, so a
	// scanner repeating a code every second still has it checked every
	// two.
	r.last, r.lastAt = text, now
	if tooLong {
		// The framer kept MaxInput+1 bytes: the check refuses it as too
		// long and the refusal is in the scan log and on the screens.
		r.log.Warn("serial scanner sent an over-long line; cut off and refused", "limit", check.MaxInput)
	}
	d, err := r.c.Check(ctx, r.cfg.Name, text)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("check serial scan", "err", err)
			r.inputs.Update(r.cfg.Name, func(s *InputStatus) { s.Errors++; s.LastError = err.Error() })
		}
		return
	}
	r.log.Debug("serial scan checked", "decision", d.Decision, "reason", d.Reason, "scan", d.ScanID)
}

// checkSuffix tells staff once that the scanner ends lines differently
// from its configuration. Lines are read either way; the warning helps
// when the same scanner is moved to a reader that is strict.
func (r *SerialReader) checkSuffix() {
	if r.warned {
		return
	}
	cr, lf, crlf := r.framer.Ends()
	seen := ""
	switch {
	case crlf > 0 && r.cfg.Suffix != "crlf":
		seen = "crlf"
	case cr > 0 && r.cfg.Suffix != "cr":
		seen = "cr"
	case lf > 0 && r.cfg.Suffix != "lf":
		seen = "lf"
	default:
		return
	}
	r.warned = true
	r.log.Warn("serial scanner line suffix differs from its configuration; lines are read anyway",
		"configured", r.cfg.Suffix, "seen", seen)
}
