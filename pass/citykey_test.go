package pass

import (
	"bytes"
	"testing"
)

func TestParseCityKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, CityKeyLen)
	good, err := MarshalCityKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseCityKey(good); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("round trip: %x %v", k, err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     cityKeyMagic,
		"short":     good[:len(good)-1],
		"long":      append(append([]byte(nil), good...), '\n'),
		"zero key":  append(append([]byte(nil), cityKeyMagic...), make([]byte, CityKeyLen)...),
		"other":     append([]byte("PGCITYPSEUDO9\n"), key...),
		"anchor":    append([]byte("PGANCHOR"), make([]byte, 38)...),
		"text copy": []byte(string(good) + "\r\n"),
	} {
		if _, err := ParseCityKey(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := MarshalCityKey(key[:31]); err == nil {
		t.Error("a 31-byte key was written")
	}
	for _, s := range []string{"", "1234", "zzzz-zzzz-zzzz-zzzz", "0000-0000-0000-0000-00"} {
		if _, err := ParseCityKeyCheck(s); err == nil {
			t.Errorf("check %q accepted", s)
		}
	}
	c := CityKeyCheck(key)
	if back, err := ParseCityKeyCheck(FormatCityKeyCheck(c)); err != nil || !bytes.Equal(back, c) {
		t.Fatalf("check round trip: %v", err)
	}
}

// FuzzParseCityKey: whatever the bytes, an accepted file writes back to
// itself and holds a 32-byte key.
func FuzzParseCityKey(f *testing.F) {
	good, _ := MarshalCityKey(bytes.Repeat([]byte{1}, CityKeyLen))
	f.Add(good)
	f.Add([]byte{})
	f.Add(cityKeyMagic)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseCityKey(b)
		if err != nil {
			return
		}
		back, err := MarshalCityKey(k)
		if err != nil || !bytes.Equal(back, b) || len(k) != CityKeyLen {
			t.Fatalf("accepted %x but writes %x", b, back)
		}
	})
}
