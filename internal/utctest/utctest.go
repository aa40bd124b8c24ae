// Package utctest runs a package's tests as on a machine whose zone is
// UTC, whatever this machine's, without writing time.Local: a test binary
// that links nats-server has goroutines reading the zone from its start,
// so the variable must not change once the program runs. The tests run
// in a child of the test binary started with TZ=UTC.
package utctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// zoneEnv marks the child, which runs the tests.
const zoneEnv = "TZ"

// Run runs the test binary again with TZ=UTC unless this is that run,
// and returns the child's exit code and true; in the child (the zone
// already UTC) it returns false and the caller runs the tests.
func Run() (code int, ran bool) {
	if os.Getenv(zoneEnv) == "UTC" {
		return 0, false
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), zoneEnv+"=UTC")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), true
	default:
		fmt.Fprintf(os.Stderr, "utctest: running the tests with TZ=UTC: %v\n", err)
		return 1, true
	}
}

// IsUTC reports whether the local zone is UTC, as Run makes it.
func IsUTC() bool {
	_, off := time.Now().Zone()
	return off == 0 && time.Local.String() == "UTC"
}

// Require fails t unless the local zone is UTC: a test that relies on
// it, in a package whose TestMain did not call Run.
func Require(t testing.TB) {
	t.Helper()
	if !IsUTC() {
		t.Fatal("the local zone is not UTC: the package's TestMain must run its tests through utctest.Run")
	}
}
