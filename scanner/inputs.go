package scanner

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// InputStatus is the state of one input (a serial scanner, an evdev
// keyboard-wedge scanner), for the status page, the gate screen and
// /readyz.
type InputStatus struct {
	Name      string // configured name, also the scan source
	Kind      string // "serial", "evdev"
	Path      string // device path as configured
	Connected bool
	Since     time.Time // when Connected last changed
	LastRead  time.Time // last complete frame read
	Reads     int64     // frames read
	Errors    int64     // read or open errors
	LastError string
	// Unterminated counts keys received without a line end, given up
	// after a pause: a keyboard-wedge scanner whose suffix is off or not
	// a line end types every pass this way, and nothing is checked.
	Unterminated     int64
	LastUnterminated time.Time
}

// Inputs is a registry of input states, safe for concurrent use. Readers
// report into it; pages read snapshots.
type Inputs struct {
	mu sync.Mutex
	m  map[string]*InputStatus
}

// NewInputs returns an empty registry.
func NewInputs() *Inputs { return &Inputs{m: make(map[string]*InputStatus)} }

// Update applies fn to the status of the named input, creating it.
func (in *Inputs) Update(name string, fn func(*InputStatus)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.m[name]
	if !ok {
		s = &InputStatus{Name: name}
		in.m[name] = s
	}
	fn(s)
}

// List returns a copy of every input's status, by name.
func (in *Inputs) List() []InputStatus {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]InputStatus, 0, len(in.m))
	for _, s := range in.m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b InputStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Remove forgets the named input (it is no longer configured).
func (in *Inputs) Remove(name string) {
	in.mu.Lock()
	delete(in.m, name)
	in.mu.Unlock()
}
