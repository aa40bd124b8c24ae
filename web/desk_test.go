package web_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"passgate/store"
	"passgate/web/i18n"
)

// deskIssuer starts a test appliance and logs an issuer in.
func deskIssuer(t *testing.T) (*testServer, *http.Client) {
	t.Helper()
	ts := newTestServer(t)
	ts.createUser(t, "issuer1", store.UserIssuer, "issuer-password-1")
	return ts, ts.login(t, "issuer1", "issuer-password-1")
}

func deskDoc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// deskRegister registers a resident through the form and returns the
// path of their page.
func deskRegister(t *testing.T, ts *testServer, c *http.Client, name, idType, id, phone string) string {
	t.Helper()
	resp, body := ts.postForm(t, c, "/desk/people", url.Values{"name": {name}, "id_type": {idType}, "id_number": {id}, "phone": {phone}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register: status %d: %.800s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/desk/people/") || strings.Contains(loc, id) {
		t.Fatalf("register redirected to %q", loc)
	}
	path, _, _ := strings.Cut(loc, "?")
	return path
}

// decodeQR reads the pass text out of a data: URL PNG.
func decodeQR(t *testing.T, dataURL string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(dataURL, "data:image/png;base64,")
	if !ok {
		t.Fatalf("QR is not a PNG data URL: %.60s", dataURL)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

func TestDesk_RegisterFindAndShow(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	resp, body := ts.get(t, c, "/desk")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /desk: %d", resp.StatusCode)
	}
	doc := deskDoc(t, body)
	for _, id := range []string{"register-form", "find-form", "reg-name", "reg-id-type", "reg-id", "reg-phone"} {
		if testid(doc, id).Length() != 1 {
			t.Errorf("desk lacks %s", id)
		}
	}

	path := deskRegister(t, ts, c, "王小明", "mainland", "11010519491231002x", "138 0013 8000")
	resp, body = ts.get(t, c, path+"?done=registered")
	if resp.StatusCode != 200 {
		t.Fatalf("person page: %d", resp.StatusCode)
	}
	doc = deskDoc(t, body)
	if got := testid(doc, "person-name").Text(); got != "王*明" {
		t.Errorf("name %q", got)
	}
	if got := testid(doc, "person-tail").Text(); !strings.Contains(got, "002X") {
		t.Errorf("ID tail %q", got)
	}
	if got := testid(doc, "person-phone").Text(); got != "13800138000" {
		t.Errorf("phone %q", got)
	}
	if testid(doc, "notice").Length() != 1 || !strings.Contains(testid(doc, "color").Text(), "绿码") {
		t.Errorf("notice or colour missing: %q", testid(doc, "color").Text())
	}
	if strings.Contains(body, "11010519491231002") {
		t.Fatal("the person page shows the full ID number")
	}

	// Found by ID number, typed differently.
	resp, _ = ts.postForm(t, c, "/desk/find", url.Values{"id_number": {" 110105 19491231002X"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != path {
		t.Fatalf("find: %d %q, want 303 %q", resp.StatusCode, resp.Header.Get("Location"), path)
	}
	resp, body = ts.postForm(t, c, "/desk/find", url.Values{"id_number": {"610113199001011230"}})
	if resp.StatusCode != http.StatusNotFound || testid(deskDoc(t, body), "find-error").Length() != 1 {
		t.Fatalf("find unknown: %d", resp.StatusCode)
	}

	// Registering again keeps one person.
	if again := deskRegister(t, ts, c, "王小明", "mainland", "11010519491231002X", ""); again != path {
		t.Fatalf("second registration at %s, first at %s", again, path)
	}
}

func TestDesk_RegisterInvalid(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	tests := []struct {
		name  string
		form  url.Values
		field string
		en    string // English message expected with the English cookie
	}{
		{"MissingName", url.Values{"name": {" "}, "id_type": {"mainland"}, "id_number": {"11010519491231002X"}}, "name", "Required"},
		{"BadCheckDigit", url.Values{"name": {"张三"}, "id_type": {"mainland"}, "id_number": {"110105194912310021"}}, "id_number", "check digit"},
		{"BadBirthDate", url.Values{"name": {"张三"}, "id_type": {"mainland"}, "id_number": {"320102200102290039"}}, "id_number", "date of birth"},
		{"ShortPassport", url.Values{"name": {"张三"}, "id_type": {"passport"}, "id_number": {"E1"}}, "id_number", "4 to 32"},
		{"BadIDType", url.Values{"name": {"张三"}, "id_type": {"licence"}, "id_number": {"E1234567"}}, "id_type", "choices"},
		{"BadPhone", url.Values{"name": {"张三"}, "id_type": {"passport"}, "id_number": {"E1234567"}, "phone": {"138-abc"}}, "phone", "Digits only"},
		{"LongPhone", url.Values{"name": {"张三"}, "id_type": {"passport"}, "id_number": {"E1234567"}, "phone": {"123456789012345678901"}}, "phone", "at most 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.postForm(t, c, "/desk/people", tt.form)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", resp.StatusCode)
			}
			doc := deskDoc(t, body)
			if testid(doc, "err-"+tt.field).Length() != 1 || testid(doc, "form-invalid").Length() != 1 {
				t.Fatalf("no message for %s: %.1000s", tt.field, body)
			}
			// The values typed are kept.
			if v, _ := testid(doc, "reg-id").Attr("value"); v != tt.form.Get("id_number") {
				t.Errorf("ID number field holds %q", v)
			}
			// In English, the message is English.
			req, _ := http.NewRequest("POST", ts.Srv.URL+"/desk/people", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "passgate_lang", Value: "en"})
			resp2, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			doc2, _ := goquery.NewDocumentFromReader(resp2.Body)
			resp2.Body.Close()
			if msg := testid(doc2, "err-"+tt.field).Text(); resp2.StatusCode != 422 || !strings.Contains(msg, tt.en) {
				t.Errorf("English: %d %q, want %q", resp2.StatusCode, msg, tt.en)
			}
		})
	}
	if n := countPeople(t, ts); n != 0 {
		t.Fatalf("%d people stored from invalid forms", n)
	}
}

// countPeople counts the residents registered.
func countPeople(t *testing.T, ts *testServer) int {
	t.Helper()
	n, err := ts.DB.CountPeople(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDesk_TestResultsDosesStatus(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	ctx := t.Context()
	path := deskRegister(t, ts, c, "李四", "passport", "E12345678", "")

	// Issue a phone pass; its QR is a real pass the gate allows once tested.
	// Times are typed on the district's clock.
	zone, _ := time.LoadLocation(store.DefaultTimeZone)
	now := time.Now().In(zone)
	resp, _ := ts.postForm(t, c, path+"/test", url.Values{"sample_time": {now.Add(-2 * time.Hour).Format("2006-01-02T15:04")}, "result": {"negative"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "?done=test") {
		t.Fatalf("negative test: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := ts.postForm(t, c, path+"/pass", url.Values{"kind": {"phone"}})
	if resp.StatusCode != 200 {
		t.Fatalf("phone pass: %d %.500s", resp.StatusCode, body)
	}
	doc := deskDoc(t, body)
	src, _ := testid(doc, "pass-qr").Attr("src")
	href, _ := testid(doc, "pass-download").Attr("href")
	dl, _ := testid(doc, "pass-download").Attr("download")
	if href != src || !strings.HasSuffix(dl, ".png") {
		t.Errorf("download link %.40q %q does not save the QR", href, dl)
	}
	if got := testid(doc, "pass-name").Text(); !strings.Contains(got, "李*") || !strings.Contains(got, "5678") {
		t.Errorf("pass name %q", got)
	}
	if testid(doc, "pass-valid").Text() == "" {
		t.Error("no validity")
	}
	text := decodeQR(t, src)
	d, err := ts.Checker.Check(ctx, "test", text)
	if err != nil || d.Decision != "allow" {
		t.Fatalf("fresh pass: %+v %v", d, err)
	}

	// Future sample time: 422, nothing changed.
	resp, body = ts.postForm(t, c, path+"/test", url.Values{"sample_time": {now.Add(3 * time.Hour).Format("2006-01-02T15:04")}, "result": {"positive"}})
	if resp.StatusCode != 422 || testid(deskDoc(t, body), "err-sample_time").Length() != 1 {
		t.Fatalf("future sample: %d", resp.StatusCode)
	}
	resp, body = ts.postForm(t, c, path+"/test", url.Values{"sample_time": {"yesterday"}, "result": {"negative"}})
	if resp.StatusCode != 422 || testid(deskDoc(t, body), "err-sample_time").Length() != 1 {
		t.Fatalf("bad sample time: %d", resp.StatusCode)
	}
	if d, _ := ts.Checker.Check(ctx, "test", text); d.Decision != "allow" {
		t.Fatalf("rejected forms voided the pass: %+v", d)
	}

	// A positive result: red, and the earlier pass is void.
	resp, _ = ts.postForm(t, c, path+"/test", url.Values{"sample_time": {now.Add(-time.Hour).Format("2006-01-02T15:04")}, "result": {"positive"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("positive: %d", resp.StatusCode)
	}
	if err := ts.Checker.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := ts.Checker.Check(ctx, "test", text); d.Decision != "deny" || d.Reason != "revoked" {
		t.Fatalf("pass after a positive test: %s %s, want deny revoked", d.Decision, d.Reason)
	}
	_, body = ts.get(t, c, path+"?done=positive")
	doc = deskDoc(t, body)
	if !strings.Contains(testid(doc, "color").Text(), "红码") || !strings.Contains(testid(doc, "history").Text(), "核酸阳性") {
		t.Fatalf("person after positive: %q / %q", testid(doc, "color").Text(), testid(doc, "history").Text())
	}

	// Doses.
	resp, body = ts.postForm(t, c, path+"/doses", url.Values{"doses": {"x"}})
	if resp.StatusCode != 422 || testid(deskDoc(t, body), "err-doses").Length() != 1 {
		t.Fatalf("bad doses: %d", resp.StatusCode)
	}
	if resp, _ = ts.postForm(t, c, path+"/doses", url.Values{"doses": {"3"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("doses: %d", resp.StatusCode)
	}
	_, body = ts.get(t, c, path)
	if got := testid(deskDoc(t, body), "person-doses").Text(); got != "3" {
		t.Fatalf("doses shown %q", got)
	}

	// Colour change needs a reason.
	resp, body = ts.postForm(t, c, path+"/status", url.Values{"color": {"green"}, "reason": {"  "}})
	if resp.StatusCode != 422 || testid(deskDoc(t, body), "err-reason").Length() != 1 {
		t.Fatalf("status without reason: %d", resp.StatusCode)
	}
	if resp, _ = ts.postForm(t, c, path+"/status", url.Values{"color": {"green"}, "reason": {"复检阴性"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	_, body = ts.get(t, c, path)
	if doc = deskDoc(t, body); !strings.Contains(testid(doc, "color").Text(), "绿码") || !strings.Contains(testid(doc, "history").Text(), "复检阴性") {
		t.Fatalf("after status change: %q", testid(doc, "color").Text())
	}

	// Unknown person and malformed addresses: 404, not 500.
	for _, p := range []string{"/desk/people/00112233445566778899aabbccddeeff", "/desk/people/zz"} {
		if resp, _ := ts.get(t, c, p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}

func TestDesk_PaperPassPrintView(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	path := deskRegister(t, ts, c, "赵六", "mainland", "610113199001011230", "")
	resp, body := ts.postForm(t, c, path+"/pass", url.Values{"kind": {"paper"}})
	if resp.StatusCode != 200 {
		t.Fatalf("paper pass: %d", resp.StatusCode)
	}
	doc := deskDoc(t, body)
	cards := testid(doc, "pass-card")
	if cards.Length() != 1 || doc.Find("body.print-a6").Length() != 1 {
		t.Fatalf("%d cards", cards.Length())
	}
	if doc.Find("nav").Length() != 0 || doc.Find("header.topbar").Length() != 0 {
		t.Error("the print view shows navigation")
	}
	if !doc.Find("[data-testid=print-controls]").HasClass("no-print") {
		t.Error("print controls would print")
	}
	if got := testid(doc, "card-name").Text(); !strings.Contains(got, "赵*") || !strings.Contains(got, "1230") {
		t.Errorf("card name %q", got)
	}
	if !strings.Contains(cards.Text(), "雁塔区") || !strings.Contains(cards.Text(), "出示此码") {
		t.Errorf("card lacks district or Chinese instructions: %q", cards.Text())
	}
	src, _ := cards.Find("img.qr").Attr("src")
	if d, err := ts.Checker.Check(t.Context(), "test", decodeQR(t, src)); err != nil || d.Kind.String() != "paper" {
		t.Fatalf("printed QR: %+v %v", d, err)
	}
	if resp, _ := ts.postForm(t, c, path+"/pass", url.Values{"kind": {"plastic"}}); resp.StatusCode != 422 {
		t.Errorf("unknown kind: %d", resp.StatusCode)
	}
}

func TestDesk_Access(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.createUser(t, "staff1", store.UserStaff, "staff-password-1")
	staff := ts.login(t, "staff1", "staff-password-1")
	if resp, _ := ts.get(t, staff, "/desk"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("staff GET /desk: %d", resp.StatusCode)
	}
	if resp, _ := ts.postForm(t, staff, "/desk/people", url.Values{"name": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("staff POST /desk/people: %d", resp.StatusCode)
	}
	anon := ts.client(t)
	if resp, _ := ts.get(t, anon, "/desk"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous GET /desk: %d", resp.StatusCode)
	}
	admin := ts.login(t, "admin", ts.AdminPassword)
	if resp, _ := ts.get(t, admin, "/desk"); resp.StatusCode != 200 {
		t.Errorf("admin GET /desk: %d", resp.StatusCode)
	}
}

// TestDesk_HistoryInPageLanguage checks that the reasons the appliance
// records itself read in the page's language: no English "registered" on a
// Chinese page.
func TestDesk_HistoryInPageLanguage(t *testing.T) {
	t.Parallel()
	ts, c := deskIssuer(t)
	path := deskRegister(t, ts, c, "王小明", "mainland", "11010519491231002x", "")
	if resp, _ := ts.postForm(t, c, path+"/test", url.Values{"sample_time": {time.Now().Add(-time.Hour).Format("2006-01-02T15:04")}, "result": {"positive"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("positive: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		lang      i18n.Lang
		want, not []string
	}{
		{i18n.ZH, []string{"登记", "核酸阳性"}, []string{"registered", "positive test"}},
		{i18n.EN, []string{"registered", "positive test"}, []string{"登记", "核酸阳性"}},
	} {
		setLang(t, ts, c, tc.lang)
		_, body := ts.get(t, c, path)
		hist := testid(deskDoc(t, body), "history").Text()
		for _, w := range tc.want {
			if !strings.Contains(hist, w) {
				t.Errorf("%s history lacks %q: %q", tc.lang, w, hist)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(hist, n) {
				t.Errorf("%s history shows %q: %q", tc.lang, n, hist)
			}
		}
	}
}
