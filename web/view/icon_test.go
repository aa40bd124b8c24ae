package view

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode"

	"github.com/PuerkitoBio/goquery"

	"passgate/web/i18n"
)

// textSymbolsOK are the symbols pages may use as text: the stock Debian
// fonts (DejaVu Sans, Noto Sans CJK) draw them. Anything else of Unicode's
// symbol class, emoji above all, is an empty box on a kiosk without an
// emoji font and must be an Icon.
var textSymbolsOK = map[rune]bool{'✓': true, '✗': true, '⚠': true}

// boxedSymbols returns the symbols of s a kiosk cannot draw.
func boxedSymbols(s string) []string {
	var out []string
	for _, r := range s {
		if (unicode.Is(unicode.So, r) || r >= 0x1F000) && !textSymbolsOK[r] {
			out = append(out, string(r))
		}
	}
	return out
}

func TestAdminHome_IconsAndTitles(t *testing.T) {
	for _, lang := range i18n.Langs {
		t.Run(string(lang), func(t *testing.T) {
			p := Page{T: i18n.Printer{Lang: lang}, Title: "admin", User: "admin", Role: "admin", Path: "/admin"}
			var buf bytes.Buffer
			if err := AdminHome(p, Dashboard{}).Render(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			doc, err := goquery.NewDocumentFromReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			cards := doc.Find(`[data-testid="admin-nav"] a`)
			if cards.Length() < 9 {
				t.Fatalf("%d cards", cards.Length())
			}
			titles := map[string]string{}
			cards.Each(func(_ int, a *goquery.Selection) {
				href, _ := a.Attr("href")
				if a.Find(`.admin-icon svg.icon path`).Length() == 0 {
					t.Errorf("card %s has no drawn icon", href)
				}
				if b := boxedSymbols(a.Text()); len(b) > 0 {
					t.Errorf("card %s shows %q", href, b)
				}
				title := strings.TrimSpace(a.Find("strong").Text())
				if other, dup := titles[title]; dup {
					t.Errorf("cards %s and %s are both titled %q", other, href, title)
				}
				titles[title] = href
			})
		})
	}
}

// TestCatalog_NoBoxedSymbols checks every message: none may carry a symbol
// a kiosk without an emoji font draws as an empty box.
func TestCatalog_NoBoxedSymbols(t *testing.T) {
	for _, k := range i18n.Keys() {
		m, _ := i18n.Lookup(k)
		if b := boxedSymbols(m.ZH + m.EN); len(b) > 0 {
			t.Errorf("%s: %q", k, b)
		}
	}
}

func TestIcon(t *testing.T) {
	for name := range iconPaths {
		var buf bytes.Buffer
		if err := Icon(name).Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		s := buf.String()
		if !strings.Contains(s, `aria-hidden="true"`) || !strings.Contains(s, `data-icon="`+name+`"`) || strings.Count(s, "<path") != len(iconPaths[name]) {
			t.Errorf("%s: %s", name, s)
		}
	}
	var buf bytes.Buffer
	_ = Icon("no-such-icon").Render(context.Background(), &buf)
	if buf.Len() != 0 {
		t.Errorf("unknown icon drew %q", buf.String())
	}
}
