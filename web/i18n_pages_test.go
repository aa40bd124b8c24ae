package web_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"passgate/web"
)

// Every page comes from the catalogue: rendered in English, no page shows
// Chinese text other than data (the district's name), the switch back to
// Chinese and the gate panel's second language (its data-msg-*-other
// attributes and its reason-other line: the panel reads in both), and no page
// shows a missing message key.
// otherLanguage matches the gate panel's messages in the other language.
var otherLanguage = regexp.MustCompile(`data-msg-[a-z-]+-other="[^"]*"|<span[^>]*data-testid="result-reason-other"[^>]*>[^<]*</span>`)

func TestPagesInEnglishHaveNoChineseText(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.login(t, "admin", ts.AdminPassword)
	pages := 0
	for _, r := range (&web.Server{}).Routes() {
		path, ok := strings.CutPrefix(r.Pattern, "GET ")
		if !ok || r.Access == web.Device || strings.HasPrefix(path, "/assets/") || strings.Contains(strings.ReplaceAll(path, "{$}", ""), "{") {
			continue
		}
		path = strings.ReplaceAll(path, "{$}", "")
		req, _ := http.NewRequest("GET", ts.Srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "passgate_lang", Value: "en"})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			resp.Body.Close()
			continue // health endpoints, redirects, the event stream
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		pages++
		text := strings.NewReplacer("雁塔区", "", "中文", "").Replace(otherLanguage.ReplaceAllString(body, ""))
		for _, ch := range text {
			if unicode.Is(unicode.Han, ch) {
				i := strings.IndexRune(text, ch)
				t.Errorf("%s in English shows Chinese text near %q", path, text[max(0, i-40):min(len(text), i+40)])
				break
			}
		}
		if i := strings.Index(body, ">["); i >= 0 && strings.Contains(body[i:min(len(body), i+60)], "]<") {
			t.Errorf("%s shows a missing message key near %q", path, body[i:min(len(body), i+60)])
		}
	}
	if pages < 5 {
		t.Fatalf("only %d pages checked", pages)
	}
}
