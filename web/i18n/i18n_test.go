package i18n_test

import (
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"

	"passgate/check"
	"passgate/web/i18n"
)

var verb = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`)

func TestCatalog(t *testing.T) {
	for _, k := range i18n.Keys() {
		m, _ := i18n.Lookup(k)
		if m.ZH == "" || m.EN == "" {
			t.Errorf("%s: a language is missing: %+v", k, m)
		}
		if zh, en := verb.FindAllString(m.ZH, -1), verb.FindAllString(m.EN, -1); !slices.Equal(zh, en) {
			t.Errorf("%s: format verbs differ: zh %v, en %v", k, zh, en)
		}
	}
}

func TestEveryReasonHasAMessage(t *testing.T) {
	for _, r := range check.Reasons {
		if _, ok := i18n.Lookup("reason." + string(r)); !ok {
			t.Errorf("reason %s has no message", r)
		}
	}
}

func TestPrinter(t *testing.T) {
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}
	if got := zh.T("nav.signed_in_as", "li", "admin"); got != "当前用户：li（admin）" {
		t.Errorf("zh = %q", got)
	}
	if got := en.T("decision.allow"); got != "Allowed" {
		t.Errorf("en = %q", got)
	}
	if got := en.T("no.such.key"); got != "[no.such.key]" {
		t.Errorf("unknown key = %q", got)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", "en-US")
	if got := i18n.FromRequest(r).Lang; got != i18n.ZH {
		t.Errorf("default language %s, want zh-CN whatever the browser says", got)
	}
	r.Header.Set("Cookie", i18n.CookieName+"=en")
	if got := i18n.FromRequest(r).Lang; got != i18n.EN {
		t.Errorf("remembered language %s, want en", got)
	}
	r.Header.Set("Cookie", i18n.CookieName+"=klingon")
	if got := i18n.FromRequest(r).Lang; got != i18n.ZH {
		t.Errorf("bad cookie gives %s, want zh-CN", got)
	}
}
