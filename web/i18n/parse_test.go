package i18n

import (
	"strings"
	"testing"
)

func TestParseCatalog(t *testing.T) {
	good := "# a comment\n\na.b\t中文 %s\tEnglish %s\r\nc\t甲\tA\n"
	msgs, err := parseCatalog([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs["a.b"] != (Msg{"中文 %s", "English %s"}) || msgs["c"] != (Msg{"甲", "A"}) {
		t.Fatalf("parsed %+v", msgs)
	}
	for _, c := range []struct{ name, in, want string }{
		{"DuplicateKey", "k\t甲\tA\nk\t乙\tB\n", "line 2: message k defined twice"},
		{"NoEnglish", "k\t甲\n", "line 1: want key, Chinese and English"},
		{"EmptyEnglish", "k\t甲\t\n", "lacks a language"},
		{"BlankChinese", "k\t \tA\n", "lacks a language"},
		{"ExtraField", "k\t甲\tA\tX\n", "got 4 fields"},
		{"EmptyKey", "\t甲\tA\n", "bad key"},
		{"KeyWithSpace", "a key\t甲\tA\n", "bad key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseCatalog([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestCatalogFilesParse reads every embedded catalog again: each parses,
// and no key is in two of them (which init would also refuse).
func TestCatalogFilesParse(t *testing.T) {
	entries, err := messageFiles.ReadDir("messages")
	if err != nil || len(entries) == 0 {
		t.Fatalf("catalogs: %d, %v", len(entries), err)
	}
	seen := map[string]string{}
	for _, e := range entries {
		data, err := messageFiles.ReadFile("messages/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := parseCatalog(data)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		for k := range msgs {
			if other, dup := seen[k]; dup {
				t.Errorf("%s is in %s and %s", k, other, e.Name())
			}
			seen[k] = e.Name()
		}
	}
	if len(seen) != len(catalog) {
		t.Fatalf("%d messages in the files, %d in the catalog", len(seen), len(catalog))
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte("a\t甲\tA\n# c\n"))
	f.Add([]byte("a\t甲\tA\na\t乙\tB"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := parseCatalog(data)
		if err != nil {
			return
		}
		for k, m := range msgs {
			if k == "" || strings.TrimSpace(m.ZH) == "" || strings.TrimSpace(m.EN) == "" {
				t.Fatalf("accepted %q: %+v", k, m)
			}
		}
	})
}
