package scanner

import (
	"io"
	"os"
)

// Hooks for the external tests of the evdev reader and layout detection.

// SetEvdevOpener replaces how r opens (and grabs) its device.
func SetEvdevOpener(r *EvdevReader, open func(path string) (io.ReadCloser, error)) { r.open = open }

// GrabEvdev issues the exclusive grab ioctl on f.
func GrabEvdev(f *os.File) error { return grabEvdev(f) }

// SetEvdevClock issues EVIOCSCLOCKID (monotonic) on f.
func SetEvdevClock(f *os.File) error { return setEvdevClock(f) }

// OpenEvdev is the production open-and-grab.
func OpenEvdev(path string) (io.ReadCloser, error) { return openEvdev(path) }

// EvdevEventSize is sizeof(struct input_event) on this machine.
const EvdevEventSize = evdevEventSize

// DecodeEvdev decodes a recorded input_event stream into the lines it
// types.
func DecodeEvdev(r io.Reader) ([]string, error) {
	lines, _, err := DecodeEvdevCount(r)
	return lines, err
}

// DecodeEvdevCount is DecodeEvdev that also counts the keys typed without
// a line end.
func DecodeEvdevCount(r io.Reader) (lines []string, unterminated int, err error) {
	var d keyDecoder
	err = readEvdev(r, &d, func(f string) { lines = append(lines, f) }, func(n int) { unterminated += n })
	return lines, unterminated, err
}
