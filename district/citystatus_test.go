package district_test

import (
	"errors"
	"strings"
	"testing"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// TestCheckCityStatusChange: the console's page and command refuse, each
// naming the field, what a hub would refuse or an officer should not send.
func TestCheckCityStatusChange(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		color        pass.Color
		field        string // "" for accepted
	}{
		{"ok", "  密接 close contact ", pass.Red, ""},
		{"no colour", "close contact", pass.Color(0), "color"},
		{"blank", " \t ", pass.Yellow, "reason"},
		{"too long", strings.Repeat("a", 501), pass.Red, "reason"},
		{"terminal escape", "a\x1b[2Jb", pass.Red, "reason"},
		{"bidi override", "a\u202eb", pass.Red, "reason"},
		{"not UTF-8", "a\xffb", pass.Red, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := district.CheckCityStatusChange(tc.color, tc.reason)
			if tc.field == "" {
				if err != nil || got != strings.TrimSpace(tc.reason) {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			var fe *store.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("got %q, %v; want an error on %s", got, err, tc.field)
			}
		})
	}
}
