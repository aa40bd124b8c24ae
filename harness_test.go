package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"passgate/internal/raceflag"
)

// buildBinary builds passgate once per test binary: every test that
// needs a real process (to kill it, or to run several at once) shares it.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "passgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "passgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %s", out)
	}
	return bin, nil
})

// skipUnderRace skips a test that drives separate passgate processes
// when this test binary has the race detector. The detector sees only
// this process; the passgate under test runs in another, built without
// it, so a run with -race finds nothing there that the plain run does
// not, and only costs time. The in-process tests are where it looks.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceflag.Enabled {
		t.Skip("drives separate passgate processes, which -race does not instrument: the plain test run covers it")
	}
}

// procOpts says how to start a passgate under test.
type procOpts struct {
	name  string            // shown in failures; "serve" when empty
	args  []string          // the whole command line, e.g. serve --data DIR --addr 127.0.0.1:0
	env   map[string]string // added to (or, in process, the whole of) the environment
	stdin string

	// inProcess runs run() in this test process instead of the built
	// binary: quicker, but the process cannot be killed.
	inProcess bool
	// https waits for the HTTPS listener too (serve with --tls-addr).
	https bool
}

// proc is a running passgate under test. Its addresses are the ones it
// logged ("listening on ..."), so every port is chosen by the kernel.
type proc struct {
	t    *testing.T
	opts procOpts
	name string

	http  string // http://host:port
	https string // https://host:port, when asked for
	out   *syncBuffer
	logs  *syncBuffer // stderr, the slog output, of every start

	cmd    *exec.Cmd          // when a real process
	cancel context.CancelFunc // when in process
	done   chan error
	exit   error
	ended  bool
}

// listening is the line serve prints for each listener.
var listening = regexp.MustCompile(`listening on ((https?)://\S+)`)

// startTimeout bounds how long a start may take on a loaded machine.
const startTimeout = 30 * time.Second

// start runs a passgate with opts and returns once it listens; it is
// stopped (SIGTERM, or its context cancelled) when the test ends, and its
// log is shown when the test failed.
func start(t *testing.T, opts procOpts) *proc {
	t.Helper()
	p := &proc{t: t, opts: opts, name: opts.name}
	if p.name == "" {
		p.name = "serve"
	}
	p.launch()
	t.Cleanup(func() {
		p.stopClean()
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, p.logs)
		}
	})
	return p
}

// launch starts the process, retrying while a fixed address that a killed
// process held is not free yet.
func (p *proc) launch() {
	p.t.Helper()
	if p.logs == nil {
		p.logs = &syncBuffer{}
	} else {
		fmt.Fprintf(p.logs, "--- %s restarted ---\n", p.name)
	}
	for attempt := 0; ; attempt++ {
		p.out, p.ended, p.exit, p.http, p.https = &syncBuffer{}, false, nil, "", ""
		logStart := len(p.logs.String())
		if p.opts.inProcess {
			p.launchInProcess()
		} else {
			p.launchBinary()
		}
		err := p.waitListening()
		if err == nil {
			return
		}
		if p.ended && attempt < 20 && strings.Contains(p.logs.String()[logStart:], "address already in use") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		p.t.Fatalf("%s: %v\nstdout:\n%s\nlog:\n%s", p.name, err, p.out, p.logs.String()[logStart:])
	}
}

// launchBinary runs the built binary, its environment this process's
// plus opts.env.
func (p *proc) launchBinary() {
	p.t.Helper()
	skipUnderRace(p.t)
	bin, err := buildBinary()
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(bin, p.opts.args...)
	p.cmd.Env = os.Environ()
	for k, v := range p.opts.env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdin = strings.NewReader(p.opts.stdin)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
}

// launchInProcess runs run() as main would, with opts.env as the whole
// environment.
func (p *proc) launchInProcess() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	getenv := func(k string) string { return p.opts.env[k] }
	go func() {
		code := run(ctx, p.opts.args, getenv, strings.NewReader(p.opts.stdin), p.out, p.logs)
		if code != 0 {
			p.done <- fmt.Errorf("exit status %d", code)
			return
		}
		p.done <- nil
	}()
}

// waitListening polls the output until every asked listener is up.
func (p *proc) waitListening() error {
	deadline := time.Now().Add(startTimeout)
	for {
		for _, m := range listening.FindAllStringSubmatch(p.out.String(), -1) {
			if m[2] == "https" {
				p.https = m[1]
			} else {
				p.http = m[1]
			}
		}
		if p.http != "" && (!p.opts.https || p.https != "") {
			return nil
		}
		select {
		case p.exit = <-p.done:
			p.ended = true
			return fmt.Errorf("exited at start: %v", p.exit)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return errors.New("did not start")
		}
	}
}

// kill ends a real process hard, or cancels one in process.
func (p *proc) kill() {
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
	} else {
		p.cancel()
	}
}

// kill9 ends the process with SIGKILL (no flush, no shutdown) and waits.
func (p *proc) kill9() {
	p.t.Helper()
	if p.opts.inProcess {
		p.t.Fatal("kill9: a process run in the test cannot be killed")
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
}

// stop asks the process to shut down (SIGTERM, or its context cancelled),
// waits, and returns how it exited. Stopping an ended process returns how
// it ended.
func (p *proc) stop() error {
	p.t.Helper()
	if p.ended {
		return p.exit
	}
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	} else {
		p.cancel()
	}
	p.wait()
	return p.exit
}

// stopClean stops the process, fails the test unless it exited cleanly,
// and returns its log.
func (p *proc) stopClean() string {
	p.t.Helper()
	if !p.ended {
		if err := p.stop(); err != nil {
			p.t.Errorf("%s: exit: %v", p.name, err)
		}
	}
	return p.logs.String()
}

// wait waits for the exit (killing what does not end in time) and
// records it.
func (p *proc) wait() {
	if p.ended {
		return
	}
	select {
	case p.exit = <-p.done:
	case <-time.After(startTimeout):
		p.kill()
		p.exit = <-p.done
		p.t.Errorf("%s did not stop", p.name)
	}
	p.ended = true
}

// restart starts the process again with the same options (after kill9 or
// stop).
func (p *proc) restart() {
	p.t.Helper()
	if !p.ended {
		p.t.Fatalf("%s: restart while running", p.name)
	}
	p.launch()
}
