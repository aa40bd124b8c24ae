package scanner

// Framer splits a scanner's byte stream into lines. A scanner ends each
// code with the suffix it is programmed for (CR, LF or CRLF); the framer
// accepts all three whatever was configured, so a scanner reprogrammed
// at the gate loses no scans: CR and LF each end a line, and the empty
// line between the two bytes of a CRLF is dropped like any empty line.
//
// A line longer than the cap is cut off: the framer keeps its first
// cap+1 bytes, discards the rest up to the next terminator, and emits it
// once, marked too long. Memory per framer is therefore bounded by the
// cap whatever the device sends. A Framer is not safe for concurrent use.
type Framer struct {
	max      int
	buf      []byte
	overlong bool

	// Terminator statistics, so a reader can tell staff that the
	// scanner's suffix differs from its configuration.
	prevCR       bool
	cr, lf, crlf int64
}

// NewFramer returns a framer whose lines hold at most max bytes.
func NewFramer(max int) *Framer {
	if max < 1 {
		max = 1
	}
	return &Framer{max: max}
}

// Write feeds p to the framer and calls emit for every line it
// completes, in order. line excludes the terminator and is only valid
// during the call (the framer reuses it). tooLong reports that the line
// exceeded the cap; line then holds its first max+1 bytes, so a check of
// it is refused as too long.
func (f *Framer) Write(p []byte, emit func(line []byte, tooLong bool)) {
	for _, b := range p {
		switch b {
		case '\r':
			if f.prevCR {
				f.cr++
			}
			f.prevCR = true
			f.end(emit)
		case '\n':
			if f.prevCR {
				f.crlf++
			} else {
				f.lf++
			}
			f.prevCR = false
			f.end(emit)
		default:
			if f.prevCR {
				f.cr++
				f.prevCR = false
			}
			switch {
			case f.overlong:
				// Discard up to the next terminator.
			case len(f.buf) < f.max:
				f.buf = append(f.buf, b)
			default:
				// One byte past the cap is kept so the line, when
				// checked, is refused as too long rather than read as
				// a shorter code.
				f.buf = append(f.buf, b)
				f.overlong = true
			}
		}
	}
}

// end completes the pending line, if any.
func (f *Framer) end(emit func([]byte, bool)) {
	if len(f.buf) > 0 {
		emit(f.buf, f.overlong)
	}
	f.buf, f.overlong = f.buf[:0], false
}

// Reset drops a partial line, as after a reconnect: bytes from before
// the break cannot be joined to bytes after it.
func (f *Framer) Reset() {
	f.buf, f.overlong, f.prevCR = f.buf[:0], false, false
}

// Pending is how many bytes of an incomplete line the framer holds.
func (f *Framer) Pending() int { return len(f.buf) }

// Ends counts the terminators seen so far: lone CRs, lone LFs and CRLF
// pairs. A CR is counted once the byte after it is known.
func (f *Framer) Ends() (cr, lf, crlf int64) { return f.cr, f.lf, f.crlf }
