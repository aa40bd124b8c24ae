package main

import (
	"strings"
	"testing"
)

// A bench whose passes the policy refuses fails loudly instead of
// reporting the speed of refusals as throughput; one the policy allows
// passes, in process and over the scan API.
func TestBench_FailsWhenChecksAreRefused(t *testing.T) {
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "a long admin password"}
	for name, mode := range map[string][]string{"InProcess": nil, "HTTP": {"--http"}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"bench", "--data", dir, "--n", "40", "--concurrency", "4"}, mode...)
			if r := runCLI(t, env, "", args...); r.code != exitOK {
				t.Fatalf("bench %v on allowed passes: exit %d: %s %s", mode, r.code, r.stdout, r.stderr)
			}
			if r := runCLI(t, env, "", "policy", "--data", dir, "--colors", "red"); r.code != exitOK {
				t.Fatalf("policy: exit %d: %s", r.code, r.stderr)
			}
			r := runCLI(t, env, "", args...)
			if r.code != exitError || !strings.Contains(r.stderr, "40 of 40 checks were not allowed") {
				t.Fatalf("bench %v on refused passes: exit %d: %s %s", mode, r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "not allowed:  40") {
				t.Errorf("bench report does not count the refusals: %s", r.stdout)
			}
		})
	}
}
