package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"passgate/pass"
	"passgate/store"
)

// The city pseudonym key end to end: made once offline, imported at two
// districts' hubs with its check value compared (a wrong one refused),
// and then both hubs hold the same key.
func TestCLI_CityPseudonymKey(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	env, _ := twoDistricts(t, dirA, dirB)
	keyFile := filepath.Join(t.TempDir(), "city-pseudonym.key")
	r := runCLI(t, nil, "", "city", "pseudonym-key", "--out", keyFile)
	if r.code != 0 {
		t.Fatalf("city pseudonym-key: %s", r.stderr)
	}
	check := regexp.MustCompile(`check: ([0-9a-f-]{19})`).FindStringSubmatch(r.stdout)
	if check == nil {
		t.Fatalf("no check value in %q", r.stdout)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v", err)
	}
	made, _ := os.ReadFile(keyFile)
	if r := runCLI(t, nil, "", "city", "pseudonym-key", "--out", keyFile); r.code == 0 || !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("second key: %d %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, made) {
		t.Fatal("the key file was replaced")
	}
	if r := runCLI(t, env, "", "trust", "city-key", keyFile, "--data", dirA); r.code == 0 {
		t.Fatal("imported without a check value")
	}
	if r := runCLI(t, env, "", "trust", "city-key", keyFile, "--data", dirA, "--check", "0000-0000-0000-0000"); r.code == 0 {
		t.Fatal("imported with a wrong check value")
	}
	for _, dir := range []string{dirA, dirB} {
		if r := runCLI(t, env, "", "trust", "city-key", keyFile, "--data", dir, "--check", check[1]); r.code != 0 {
			t.Fatalf("import: %s", r.stderr)
		}
	}
	want, err := pass.ParseCityKey(made)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{dirA, dirB} {
		db, err := store.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := db.District(t.Context())
		db.Close()
		if err != nil || !bytes.Equal(d.CityPseudonymKey, want) {
			t.Fatalf("%s: city key %x (%v)", dir, d.CityPseudonymKey, err)
		}
	}
}
