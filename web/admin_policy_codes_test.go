package web

import (
	"testing"

	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
)

// Every field error store.Policy.Validate can give has an input on the
// form to show it at and a message in both languages: none reaches a page
// as a bare code or lost.
func TestPolicyForm_ShowsEveryValidateError(t *testing.T) {
	all := store.Policy{Colors: []pass.Color{0}, MaxTestAge: -1, MinDoses: -1, RepeatWindow: -1, ClockSkew: -1,
		ScanRetention: -1, PassRetention: -1, AuditRetention: -1, TimeZone: "Mars/Olympus"}
	errs := append(all.Validate(), (&store.Policy{}).Validate()...) // unknown colour, then no colour
	if len(errs) != 10 {
		t.Fatalf("%d errors, want one per field and both colour errors: %v", len(errs), errs)
	}
	for _, fe := range errs {
		if policyInputs[fe.Field] == "" {
			t.Errorf("%s has no input on the form", fe.Field)
		}
		m, ok := i18n.Lookup(fe.Code)
		if !ok || m.ZH == "" || m.EN == "" {
			t.Errorf("%s: code %q has no message in both languages", fe.Field, fe.Code)
		}
		zh := i18n.Printer{Lang: i18n.ZH}.T(fe.Code, fe.Args...)
		if zh == fe.Code || zh == "" {
			t.Errorf("%s: %q shown untranslated", fe.Field, fe.Code)
		}
	}
}
