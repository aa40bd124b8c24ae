package scanner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Runner reads one input until its context ends.
type Runner interface {
	Run(ctx context.Context) error
}

// InputSpec configures one input: its name (the scan source), its kind
// ("serial", "evdev") and its spec, the device path with options as on the
// command line.
type InputSpec struct {
	Name string
	Kind string
	Spec string
}

// Factory validates a spec and makes its Runner without starting it.
type Factory func(InputSpec) (Runner, error)

// Manager runs the configured inputs, each in its own goroutine, and
// starts, stops or restarts them when the configuration changes, so an
// admin adds or removes a scanner without restarting the appliance.
type Manager struct {
	factories map[string]Factory
	inputs    *Inputs
	log       *slog.Logger

	mu      sync.Mutex
	running map[string]*runningInput
}

type runningInput struct {
	spec   InputSpec
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a Manager making inputs with factories, by kind.
func NewManager(factories map[string]Factory, inputs *Inputs, log *slog.Logger) *Manager {
	return &Manager{factories: factories, inputs: inputs, log: log, running: make(map[string]*runningInput)}
}

// Validate reports whether spec would make an input.
func (m *Manager) Validate(spec InputSpec) error {
	_, err := m.make(spec)
	return err
}

func (m *Manager) make(spec InputSpec) (Runner, error) {
	f, ok := m.factories[spec.Kind]
	if !ok {
		return nil, fmt.Errorf("input %q: unknown kind %q", spec.Name, spec.Kind)
	}
	return f(spec)
}

// Apply makes the running inputs those of specs: it stops inputs no longer
// configured or configured differently, and starts new ones under ctx. A
// spec that does not validate is reported in the registry and not run.
func (m *Manager) Apply(ctx context.Context, specs []InputSpec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := make(map[string]InputSpec, len(specs))
	for _, s := range specs {
		want[s.Name] = s
	}
	for name, r := range m.running {
		if s, ok := want[name]; !ok || s != r.spec {
			r.cancel()
			<-r.done
			delete(m.running, name)
		}
	}
	for _, st := range m.inputs.List() {
		if _, ok := want[st.Name]; !ok {
			m.inputs.Remove(st.Name) // no longer configured: forget its state
		}
	}
	for name, s := range want {
		if _, ok := m.running[name]; ok {
			continue
		}
		runner, err := m.make(s)
		if err != nil {
			m.inputs.Update(name, func(st *InputStatus) {
				st.Kind, st.Path, st.Connected, st.LastError = s.Kind, s.Spec, false, err.Error()
				st.Errors++
			})
			m.log.Warn("input not started", "input", name, "err", err)
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &runningInput{spec: s, cancel: cancel, done: make(chan struct{})}
		m.running[name] = r
		go func() {
			defer close(r.done)
			if err := runner.Run(rctx); err != nil && rctx.Err() == nil {
				m.log.Error("input stopped", "input", name, "err", err)
			}
		}()
	}
}

// Stop stops every input and waits for them.
func (m *Manager) Stop() {
	m.Apply(context.Background(), nil)
}

// Running lists the names of the running inputs.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.running))
	for name := range m.running {
		out = append(out, name)
	}
	return out
}
