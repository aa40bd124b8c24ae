package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"passgate/check"
	"passgate/scanner"
	"passgate/store"
)

// inputFactories make the readers of each input kind. A factory parses and
// validates its spec without opening anything.
func inputFactories(c *check.Checker, inputs *scanner.Inputs, log *slog.Logger) map[string]scanner.Factory {
	return map[string]scanner.Factory{
		"serial": func(s scanner.InputSpec) (scanner.Runner, error) {
			cfg, err := scanner.ParseSerialSpec(s.Name + "=" + s.Spec)
			if err != nil {
				return nil, err
			}
			return scanner.NewSerialReader(cfg, c, inputs, log), nil
		},
		"evdev": func(s scanner.InputSpec) (scanner.Runner, error) {
			cfg, err := scanner.ParseEvdevSpec(s.Name + "=" + s.Spec)
			if err != nil {
				return nil, err
			}
			return scanner.NewEvdevReader(cfg, c, inputs, log), nil
		},
	}
}

// ParseInput turns a command-line input "NAME=PATH,OPTIONS" (or "PATH,..."
// with the name taken from the path) into a spec, validated by its kind's
// parser.
func ParseInput(kind, value string) (scanner.InputSpec, error) {
	var name string
	switch kind {
	case "serial":
		cfg, err := scanner.ParseSerialSpec(value)
		if err != nil {
			return scanner.InputSpec{}, err
		}
		name = cfg.Name
	case "evdev":
		cfg, err := scanner.ParseEvdevSpec(value)
		if err != nil {
			return scanner.InputSpec{}, err
		}
		name = cfg.Name
	default:
		return scanner.InputSpec{}, fmt.Errorf("unknown input kind %q", kind)
	}
	rest := value
	if n, r, ok := strings.Cut(value, "="); ok && !strings.Contains(n, "/") {
		rest = r
	}
	return scanner.InputSpec{Name: name, Kind: kind, Spec: strings.TrimSpace(rest)}, nil
}

// runInputs keeps the running readers equal to the configured inputs: those
// from the command line and those an admin stored, re-read when the admin
// changes them (changed) and every 30 s (another process may have). It
// stops every reader when ctx ends.
func runInputs(ctx context.Context, db *store.DB, m *scanner.Manager, fromFlags []scanner.InputSpec, changed <-chan struct{}, log *slog.Logger) {
	defer m.Stop()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		specs := append([]scanner.InputSpec(nil), fromFlags...)
		stored, err := db.FindInputs(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("load inputs", "err", err)
		}
		for _, in := range stored {
			specs = append(specs, scanner.InputSpec{Name: in.Name, Kind: in.Kind, Spec: in.Spec})
		}
		m.Apply(ctx, specs)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}
