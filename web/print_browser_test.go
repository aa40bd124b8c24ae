package web_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"passgate/store"
)

// printPDF prints the current page as Chromium's print dialog would with
// the page's own paper size, and returns the PDF (saved under $ARTIFACTS
// as name.pdf when set).
func printPDF(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	yes := true
	res, err := chromedp.Call(ctx, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &yes, PrintBackground: &yes})
	if err != nil {
		t.Fatalf("print %s to PDF: %v", name, err)
	}
	if dir := os.Getenv("ARTIFACTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".pdf"), res.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return res.Data
}

var mediaBoxRE = regexp.MustCompile(`/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]`)

// pdfPageSizes reads every page's /MediaBox and returns the sizes in
// millimetres (a PDF unit is 1/72 inch). Chromium writes page
// dictionaries uncompressed, one MediaBox each.
func pdfPageSizes(t *testing.T, pdf []byte) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, m := range mediaBoxRE.FindAllSubmatch(pdf, -1) {
		var v [4]float64
		for i := range v {
			f, err := strconv.ParseFloat(string(m[i+1]), 64)
			if err != nil {
				t.Fatalf("MediaBox %q: %v", m[0], err)
			}
			v[i] = f
		}
		const mm = 25.4 / 72
		out = append(out, [2]float64{(v[2] - v[0]) * mm, (v[3] - v[1]) * mm})
	}
	if len(out) == 0 {
		t.Fatal("no /MediaBox in the PDF")
	}
	return out
}

// assertPaper fails unless every page of pdf is w × h mm within 1 mm.
func assertPaper(t *testing.T, pdf []byte, what string, w, h float64, pages int) {
	t.Helper()
	sizes := pdfPageSizes(t, pdf)
	if len(sizes) != pages {
		t.Errorf("%s: %d pages, want %d", what, len(sizes), pages)
	}
	for i, s := range sizes {
		if math.Abs(s[0]-w) > 1 || math.Abs(s[1]-h) > 1 {
			t.Errorf("%s: page %d is %.1f × %.1f mm, want %.0f × %.0f mm", what, i+1, s[0], s[1], w, h)
		}
	}
}

// TestPrintBrowser_PaperSizes: printed from Chromium with the page's own
// paper size, the paper card is one A6 page (105 × 148 mm) and a bulk
// print of ten is two A4 sheets (210 × 297 mm), not Letter.
func TestPrintBrowser_PaperSizes(t *testing.T) {
	skipLayoutUnderRace(t)
	t.Parallel()
	base, ts := startBrowserServer(t)
	ts.createUser(t, "issuer1", store.UserIssuer, "issuer-password-1")
	// No test required, so that every card of the bulk print is printed.
	pol := store.DefaultPolicy()
	pol.MaxTestAge = 0
	if err := ts.DB.ChangePolicy(t.Context(), &pol, "admin"); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	browserLogin(t, ctx, base, "issuer1", "issuer-password-1", "/desk")

	// One paper card.
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-name"]`), "王小明"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="reg-id"]`), "11010519491231002X"),
		chromedp.Click(chromedp.CSS(`[data-testid="reg-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the resident's page", `document.querySelector('[data-testid="issue-paper"]')`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="issue-paper"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the A6 print view", `(function(){var i=document.querySelector('[data-testid="pass-card"] img');return i && i.complete && i.naturalWidth > 0})()`, 5*time.Second)
	assertPaper(t, printPDF(t, ctx, "print-a6"), "A6 card", 105, 148, 1)

	// A bulk print of ten: two A4 sheets of eight.
	var csv strings.Builder
	csv.WriteString("name,id_number\n")
	for i := range 10 {
		fmt.Fprintf(&csv, "居民%d,%s\n", i, mainlandID(i))
	}
	file := filepath.Join(t.TempDir(), "residents.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/desk/import"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="import-form"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="import-file"]`), []string{file}),
		chromedp.Click(chromedp.CSS(`input[name="kind"][value="residents"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="import-submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the bulk print button", `document.querySelector('[data-testid="bulk-print"]')`, 10*time.Second)
	// The button opens the sheets in a new tab; here they open in this one.
	evalJS[bool](t, ctx, `(document.querySelector('[data-testid="bulk-print"]').form.removeAttribute("target"), true)`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="bulk-print"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the A4 sheets", `document.querySelectorAll('[data-testid="sheet"] [data-testid="pass-card"] img').length === 10 &&
		[...document.querySelectorAll('[data-testid="sheet"] img')].every(i => i.complete && i.naturalWidth > 0)`, 10*time.Second)
	assertPaper(t, printPDF(t, ctx, "print-a4"), "A4 sheets", 210, 297, 2)
}
