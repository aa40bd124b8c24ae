package web_test

import (
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"passgate/scanner"
	"passgate/web"
)

func TestAdminInputs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var changes atomic.Int32
	validate := func(s scanner.InputSpec) error {
		if strings.Contains(s.Spec, "baud=oops") {
			return errors.New("baud must be a number")
		}
		return nil
	}
	flags := []scanner.InputSpec{{Name: "gate-1", Kind: "serial", Spec: "/dev/ttyACM0"}}
	ts := newTestServer(t, web.Config{InputsFromFlags: flags, ValidateInput: validate, InputsChanged: func() { changes.Add(1) }})
	db := ts.DB
	cl := ts.login(t, "admin", ts.AdminPassword)

	add := func(name, kind, spec string) (int, string) {
		t.Helper()
		resp, body := ts.postForm(t, cl, "/admin/inputs", url.Values{"name": {name}, "kind": {kind}, "spec": {spec}})
		return resp.StatusCode, body
	}
	if code, body := add("kiosk-1", "evdev", "/dev/input/by-id/usb-scanner-event-kbd"); code != 303 {
		t.Fatalf("add: %d %s", code, body)
	}
	if changes.Load() != 1 {
		t.Fatalf("manager told %d times, want 1", changes.Load())
	}
	list, err := db.FindInputs(ctx)
	if err != nil || len(list) != 1 || list[0].Actor != "admin" || list[0].Kind != "evdev" {
		t.Fatalf("stored %+v %v", list, err)
	}
	for _, bad := range []struct{ name, kind, spec, want string }{
		{"", "serial", "/dev/ttyUSB0", "input-name-error"},
		{"a b", "serial", "/dev/ttyUSB0", "input-name-error"},
		{"gate-1", "serial", "/dev/ttyUSB0", "input-name-error"},  // taken by a flag
		{"kiosk-1", "serial", "/dev/ttyUSB0", "input-name-error"}, // taken in the store
		{"x", "usb", "/dev/ttyUSB0", "input-kind-error"},
		{"x", "serial", "/etc/shadow", "input-spec-error"},
		{"x", "serial", "/dev/../etc/shadow", "input-spec-error"},
		{"x", "serial", "/dev/ttyUSB0,baud=oops", "input-spec-error"},
	} {
		code, body := add(bad.name, bad.kind, bad.spec)
		if code != 422 || !strings.Contains(body, `id="`+bad.want+`"`) {
			t.Errorf("add %+v: %d, want 422 with %s", bad, code, bad.want)
		}
	}
	if changes.Load() != 1 {
		t.Fatalf("a refused form told the manager")
	}
	_, page := ts.get(t, cl, "/admin/inputs")
	if !strings.Contains(page, `data-testid="input-gate-1"`) || !strings.Contains(page, `data-testid="input-kiosk-1"`) {
		t.Fatal("the page does not list both inputs")
	}
	if resp, _ := ts.postForm(t, cl, "/admin/inputs/delete", url.Values{"name": {"kiosk-1"}}); resp.StatusCode != 303 {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if resp, _ := ts.postForm(t, cl, "/admin/inputs/delete", url.Values{"name": {"kiosk-1"}}); resp.StatusCode != 422 {
		t.Fatalf("second remove: %d", resp.StatusCode)
	}
	if list, _ := db.FindInputs(ctx); len(list) != 0 || changes.Load() != 2 {
		t.Fatalf("after remove: %d stored, %d changes", len(list), changes.Load())
	}
}
