package main

import (
	"path/filepath"
	"strings"
	"testing"

	"passgate/store"
)

// passgate hub drain names one appliance, refuses one that has not
// completed enrolment or does not exist, and audits nothing it refused.
func TestCLI_HubDrain(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "hub")
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "district test password"}
	mustSucceed(t)(runCLI(t, env, "", "hub", "add", "--data", dir, "--name", "gate-s"), "hub add")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "drain", "--data", dir}, "name the appliance"},
		{[]string{"hub", "drain", "--data", dir, "a", "b"}, "name one appliance"},
		{[]string{"hub", "drain", "--data", dir, "--name", "a", "b"}, "name one appliance"},
		{[]string{"hub", "drain", "--data", dir, "nobody"}, `no appliance named "nobody"`},
		{[]string{"hub", "drain", "--data", dir, "gate-s"}, "has not completed enrolment"},
	} {
		r := runCLI(t, env, "", tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	withStore(t, dir, func(db *store.DB) {
		list, err := db.ApplianceStatuses(t.Context())
		if err != nil || len(list) != 1 || list[0].State() != "pending" {
			t.Fatalf("after refused drains: %+v, %v", list, err)
		}
	})
}
