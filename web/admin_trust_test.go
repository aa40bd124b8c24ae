package web_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// otherDistrictAnchor is the trust anchor file of a fresh district.
func otherDistrictAnchor(t *testing.T) ([]byte, *pass.Anchor) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "徐汇区", AdminPassword: "another admin password"}); err != nil {
		t.Fatal(err)
	}
	b, err := db.ExportTrustAnchor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pass.ParseAnchor(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, a
}

func postFile(t *testing.T, ts *testServer, cl *http.Client, path string, file []byte) (*http.Response, *goquery.Document) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "anchor.txt")
	fw.Write(file)
	mw.WriteField("anchor", "")
	mw.Close()
	resp, err := cl.Post(ts.Srv.URL+path, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return resp, doc
}

// An admin reads another district's trust anchor file, sees its district
// and fingerprint, and trusts it only by typing the fingerprint read out
// to them; a mismatch changes nothing and is audited.
func TestTrustPage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cl := ts.login(t, "admin", ts.AdminPassword)
	ctx := t.Context()
	doc := getDoc(t, ts, cl, "/admin/trust")
	if n := doc.Find(`[data-testid="root-row"]`).Length(); n != 1 {
		t.Fatalf("%d roots listed, want this district's one", n)
	}
	if getDoc(t, ts, cl, "/admin").Find(`a[href="/admin/trust"]`).Length() != 1 {
		t.Fatal("no link from the admin home")
	}
	// This district's own file downloads and parses.
	resp, own := ts.get(t, cl, "/admin/trust/anchor")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("anchor download: %d", resp.StatusCode)
	}
	if _, err := pass.ParseAnchor([]byte(own)); err != nil {
		t.Fatalf("downloaded anchor: %v", err)
	}

	file, a := otherDistrictAnchor(t)
	fp := pass.FormatFingerprint(a.Roots[0].Fingerprint())
	resp, doc = postFile(t, ts, cl, "/admin/trust/check", file)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("check: %d", resp.StatusCode)
	}
	if doc.Find(`[data-testid="anchor-district"]`).Text() != a.District || doc.Find(`[data-testid="anchor-fingerprint"]`).Text() != fp ||
		doc.Find(`[data-testid="anchor-name"]`).Text() != "徐汇区" {
		t.Fatalf("confirmation shows %q %q", doc.Find(`[data-testid="anchor-district"]`).Text(), doc.Find(`[data-testid="anchor-fingerprint"]`).Text())
	}
	carried, _ := doc.Find(`input[name="anchor"]`).Attr("value")
	if carried != string(file) {
		t.Fatal("the confirmation does not carry the file")
	}
	// Nothing is trusted by reading the file.
	if roots, _ := ts.DB.TrustedRoots(ctx); len(roots) != 1 {
		t.Fatalf("%d roots after the check", len(roots))
	}

	// Damaged file, no file: refused at the check.
	if resp, _ := postFile(t, ts, cl, "/admin/trust/check", bytes.Replace(file, []byte("\nroot "), []byte("\nroot x"), 1)); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("damaged file: %d", resp.StatusCode)
	}
	if resp, _ := postFile(t, ts, cl, "/admin/trust/check", nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("no file: %d", resp.StatusCode)
	}

	for _, bad := range []string{"", "12", strings.Replace(fp, fp[:4], "ffff", 1)} {
		resp, body := ts.postForm(t, cl, "/admin/trust/import", url.Values{"anchor": {string(file)}, "fingerprint": {bad}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="trust-fingerprint-error"`) {
			t.Fatalf("fingerprint %q: %d", bad, resp.StatusCode)
		}
	}
	if roots, _ := ts.DB.TrustedRoots(ctx); len(roots) != 1 {
		t.Fatalf("%d roots after refused imports", len(roots))
	}
	resp, _ = ts.postForm(t, cl, "/admin/trust/import", url.Values{"anchor": {string(file)}, "fingerprint": {strings.ToUpper(fp)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	doc = getDoc(t, ts, cl, resp.Header.Get("Location"))
	if doc.Find(`[data-testid="root-row"][data-district="`+a.District+`"]`).Length() != 1 {
		t.Fatal("imported root not listed")
	}
	actions := map[string]int{}
	ts.DB.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Actor == "admin" {
			actions[r.Action]++
		}
		return nil
	})
	if actions[store.AuditRootImportRefused] != 3 || actions[store.AuditRootTrusted] != 1 {
		t.Fatalf("audit %v", actions)
	}
	// Its own file is refused.
	if resp, _ := ts.postForm(t, cl, "/admin/trust/import", url.Values{"anchor": {own}, "fingerprint": {doc.Find(`[data-testid="root-fingerprint"]`).First().Text()}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("own anchor: %d", resp.StatusCode)
	}
}
