package scanner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"passgate/scanner"
)

// runLog records which inputs run: the manager's job is only to start and
// stop readers, so a reader that marks itself connected and waits is all
// it needs.
type runLog struct {
	mu      sync.Mutex
	started []string
	stopped []string
	inputs  *scanner.Inputs
}

type loggedRunner struct {
	l    *runLog
	spec scanner.InputSpec
}

func (r loggedRunner) Run(ctx context.Context) error {
	r.l.mu.Lock()
	r.l.started = append(r.l.started, r.spec.Name+"="+r.spec.Spec)
	r.l.mu.Unlock()
	r.l.inputs.Update(r.spec.Name, func(s *scanner.InputStatus) { s.Kind, s.Connected = r.spec.Kind, true })
	<-ctx.Done()
	r.l.mu.Lock()
	r.l.stopped = append(r.l.stopped, r.spec.Name)
	r.l.mu.Unlock()
	return nil
}

func TestManager(t *testing.T) {
	t.Parallel()
	inputs := scanner.NewInputs()
	l := &runLog{inputs: inputs}
	factory := func(s scanner.InputSpec) (scanner.Runner, error) {
		if s.Spec == "" || s.Spec[0] != '/' {
			return nil, errors.New("path must be absolute")
		}
		return loggedRunner{l, s}, nil
	}
	m := scanner.NewManager(map[string]scanner.Factory{"serial": factory}, inputs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := t.Context()
	names := func() []string { n := m.Running(); slices.Sort(n); return n }

	m.Apply(ctx, []scanner.InputSpec{
		{Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM0"},
		{Name: "gate-2", Kind: "serial", Spec: "relative/path"},
		{Name: "kiosk", Kind: "evdev", Spec: "/dev/input/event0"},
	})
	if got := names(); !slices.Equal(got, []string{"gate-1"}) {
		t.Fatalf("running %v, want only the valid input", got)
	}
	for _, st := range inputs.List() {
		if st.Name == "gate-2" && (st.Connected || st.LastError == "") {
			t.Errorf("invalid input not reported: %+v", st)
		}
		if st.Name == "kiosk" && st.LastError == "" {
			t.Errorf("input of an unknown kind not reported: %+v", st)
		}
	}

	// Changing a spec restarts that input; removing one stops it and
	// forgets its state; unchanged inputs keep running.
	m.Apply(ctx, []scanner.InputSpec{
		{Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM1"},
		{Name: "gate-3", Kind: "serial", Spec: "/dev/ttyUSB0"},
	})
	m.Apply(ctx, []scanner.InputSpec{
		{Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM1"},
	})
	if got := names(); !slices.Equal(got, []string{"gate-1"}) {
		t.Fatalf("running %v", got)
	}
	m.Stop()
	if got := m.Running(); len(got) != 0 {
		t.Fatalf("running after Stop: %v", got)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.started)
	if want := []string{"gate-1=/dev/ttyACM0", "gate-1=/dev/ttyACM1", "gate-3=/dev/ttyUSB0"}; !slices.Equal(l.started, want) {
		t.Errorf("started %v, want %v", l.started, want)
	}
	if len(l.stopped) != 3 {
		t.Errorf("stopped %v, want every started input stopped", l.stopped)
	}
	if got := inputs.List(); len(got) != 0 {
		t.Errorf("state of removed inputs kept: %+v", got)
	}
}
