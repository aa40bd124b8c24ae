package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"passgate/store"
	"passgate/web/i18n"
)

// TestDesk_VerdictBeforeIssue: under the default policy (a negative test
// within 72 h) the person page of a resident with no test says, before
// the issue buttons, that the gate will refuse the pass and why, and
// offers the test form; the pass issued anyway carries the same warning
// and the gate answers as warned. Once a test is recorded the warning is
// gone, and the paper card prints the test date and the validity the
// policy gives it, not the signed 180 days.
func TestDesk_VerdictBeforeIssue(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	ctx := t.Context()
	path := deskRegister(t, ts, c, "李四", "passport", "E12345678", "")

	_, body := ts.get(t, c, path)
	doc := deskDoc(t, body)
	const warn = "此码在本场所将被拒绝：无核酸检测记录"
	if got := testid(doc, "verdict-refusal").Text(); !strings.Contains(got, warn) {
		t.Fatalf("verdict %q, want %q", got, warn)
	}
	if href, _ := testid(doc, "verdict-record-test").Attr("href"); href != "#test" {
		t.Errorf("no offer to record the test first: %q", href)
	}
	// Facts, test, then issue: the test form comes before the buttons.
	if i, j := strings.Index(body, `data-testid="test-form"`), strings.Index(body, `data-testid="issue-phone"`); i < 0 || j < 0 || i > j {
		t.Errorf("test form at %d, issue button at %d: the test must come first", i, j)
	}

	resp, body := ts.postForm(t, c, path+"/pass", url.Values{"kind": {"phone"}})
	if resp.StatusCode != 200 {
		t.Fatalf("phone pass: %d", resp.StatusCode)
	}
	doc = deskDoc(t, body)
	if got := testid(doc, "pass-refusal").Text(); !strings.Contains(got, warn) {
		t.Fatalf("issued pass page: refusal %q", got)
	}
	src, _ := testid(doc, "pass-qr").Attr("src")
	if d, err := ts.Checker.Check(ctx, "test", decodeQR(t, src)); err != nil || d.Reason != "test_missing" {
		t.Fatalf("the gate answered %+v %v, not as warned", d, err)
	}

	// A card printed anyway says it will be refused, not how long it is
	// valid.
	_, body = ts.postForm(t, c, path+"/pass", url.Values{"kind": {"paper"}})
	doc = deskDoc(t, body)
	if got := testid(doc, "card-valid").Text(); !strings.Contains(got, warn) || strings.Contains(got, "有效期至") {
		t.Errorf("card of an untested resident says %q", got)
	}
	if !strings.Contains(testid(doc, "print-refusal").Text(), warn) {
		t.Errorf("print view warning %q", testid(doc, "print-refusal").Text())
	}

	// English pages say it in English.
	en := ts.client(t)
	u, _ := url.Parse(ts.Srv.URL)
	en.Jar.SetCookies(u, c.Jar.Cookies(u))
	en.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.CookieName, Value: "en"}})
	if _, body := ts.get(t, en, path); !strings.Contains(testid(deskDoc(t, body), "verdict-refusal").Text(), "This pass will be refused here: No negative test") {
		t.Errorf("English verdict: %q", testid(deskDoc(t, body), "verdict-refusal").Text())
	}

	sample := time.Now().Add(-2 * time.Hour)
	if resp, _ := ts.postForm(t, c, path+"/test", url.Values{"sample_time": {sample.Format("2006-01-02T15:04")}, "result": {"negative"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	_, body = ts.get(t, c, path)
	doc = deskDoc(t, body)
	if testid(doc, "verdict-refusal").Length() != 0 || !strings.Contains(testid(doc, "verdict").Text(), "此码在本场所可通行") {
		t.Fatalf("after a test: verdict %q", testid(doc, "verdict").Text())
	}
	testLine := "核酸 " + sample.Format("01-02 15:04") + "，72 小时内有效"
	if got := testid(doc, "verdict-test-line").Text(); got != testLine {
		t.Errorf("test line %q, want %q", got, testLine)
	}

	resp, body = ts.postForm(t, c, path+"/pass", url.Values{"kind": {"paper"}})
	if resp.StatusCode != 200 {
		t.Fatalf("paper pass: %d", resp.StatusCode)
	}
	doc = deskDoc(t, body)
	if testid(doc, "print-refusal").Length() != 0 {
		t.Errorf("a good card is warned about: %q", testid(doc, "print-refusal").Text())
	}
	if got := testid(doc, "card-test").Text(); got != testLine {
		t.Errorf("card test line %q, want %q", got, testLine)
	}
	until := sample.Truncate(time.Minute).Add(72 * time.Hour).Local().Format("2006-01-02 15:04")
	if got := testid(doc, "card-valid").Text(); got != "有效期至 "+until {
		t.Errorf("card validity %q, want the test's limit %s", got, until)
	}
	if testid(doc, "card-reprint").Length() != 1 {
		t.Error("the card does not say to reprint after a new test")
	}

	// Without a test requirement the card is valid as long as it is signed.
	pol := store.DefaultPolicy()
	pol.MaxTestAge = 0
	if err := ts.DB.ChangePolicy(ctx, &pol, "admin"); err != nil {
		t.Fatal(err)
	}
	_, body = ts.postForm(t, c, path+"/pass", url.Values{"kind": {"paper"}})
	doc = deskDoc(t, body)
	if got := testid(doc, "card-valid").Text(); got == "有效期至 "+until || testid(doc, "card-reprint").Length() != 0 {
		t.Errorf("no test required, yet the card says %q", got)
	}
}

// TestDesk_PaperRefusedHere: a venue that takes no paper sees that
// before printing a card, while the phone pass is fine.
func TestDesk_PaperRefusedHere(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	pol := store.DefaultPolicy()
	pol.MaxTestAge, pol.AcceptPaper = 0, false
	if err := ts.DB.ChangePolicy(t.Context(), &pol, "admin"); err != nil {
		t.Fatal(err)
	}
	path := deskRegister(t, ts, c, "李四", "passport", "E12345678", "")
	_, body := ts.get(t, c, path)
	doc := deskDoc(t, body)
	if testid(doc, "verdict-refusal").Length() != 0 || !strings.Contains(testid(doc, "verdict-paper-refusal").Text(), "此码在本场所将被拒绝：此处不接受纸质码") {
		t.Fatalf("verdict %q", testid(doc, "verdict").Text())
	}
}

// TestDesk_FindBadCheckDigit: a mainland number with a wrong check digit
// is named as such on the find page, not as "not found", and the
// registration form then offers to confirm it as a legacy number; once
// registered that way, find reaches the person.
func TestDesk_FindBadCheckDigit(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	const bad = "610113199001011234"
	resp, body := ts.postForm(t, c, "/desk/find", url.Values{"id_number": {bad}})
	doc := deskDoc(t, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(testid(doc, "find-error").Text(), "校验位不符") ||
		strings.Contains(testid(doc, "find-error").Text(), "未找到") {
		t.Fatalf("find: %d %q", resp.StatusCode, testid(doc, "find-error").Text())
	}
	if testid(doc, "reg-allow-bad-digit").Length() != 1 {
		t.Fatal("no confirm box for a legacy number")
	}

	form := url.Values{"name": {"张三明"}, "id_type": {"mainland"}, "id_number": {bad}}
	resp, body = ts.postForm(t, c, "/desk/people", form)
	doc = deskDoc(t, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "reg-allow-bad-digit").Length() != 1 {
		t.Fatalf("register unconfirmed: %d", resp.StatusCode)
	}
	if n := countPeople(t, ts); n != 0 {
		t.Fatalf("%d people stored unconfirmed", n)
	}
	// The box is offered for a wrong check digit only.
	_, body = ts.postForm(t, c, "/desk/people", url.Values{"name": {"张三明"}, "id_type": {"mainland"}, "id_number": {"610113199013011233"}})
	if testid(deskDoc(t, body), "reg-allow-bad-digit").Length() != 0 {
		t.Error("confirm box offered for a wrong date of birth")
	}

	form.Set("allow_bad_check_digit", "1")
	resp, _ = ts.postForm(t, c, "/desk/people", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register confirmed: %d", resp.StatusCode)
	}
	loc, _, _ := strings.Cut(resp.Header.Get("Location"), "?")
	resp, _ = ts.postForm(t, c, "/desk/find", url.Values{"id_number": {bad}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc {
		t.Fatalf("find the legacy number: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), loc)
	}
}

// TestDesk_VoidSameColour: a status "change" to the colour the person
// already has voids their earlier passes (a lost card) and says so, not
// that the colour changed.
func TestDesk_VoidSameColour(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	path := deskRegister(t, ts, c, "李四", "passport", "E12345678", "")
	resp, _ := ts.postForm(t, c, path+"/status", url.Values{"color": {"green"}, "reason": {"挂失"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("void: %d", resp.StatusCode)
	}
	_, body := ts.get(t, c, resp.Header.Get("Location"))
	got := testid(deskDoc(t, body), "notice").Text()
	if strings.Contains(got, "颜色已变更") || !strings.Contains(got, "颜色未变（绿码）") || !strings.Contains(got, "作废") {
		t.Fatalf("notice %q", got)
	}
}
