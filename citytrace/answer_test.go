package citytrace

import (
	"encoding/json"
	"strings"
	"testing"
)

const testID = "0123456789abcdef0123456789abcdef"

func answerBytes(f func(*Answer)) []byte {
	a := Answer{V: 1, ID: testID, District: "d1", Checks: []Check{{AtMS: 1, Place: "gate/1", Decision: "allow",
		Contacts: []Contact{{Subject: strings.Repeat("ab", 16), AtMS: 2, Decision: "allow"}}}}}
	f(&a)
	b, _ := json.Marshal(a)
	return b
}

// Hostile answers: from another district, about another request, too
// big, malformed: each is refused, so the district is named missing
// rather than its answer taken.
func TestParseAnswer(t *testing.T) {
	if _, err := ParseAnswer(answerBytes(func(*Answer) {}), "d1", testID); err != nil {
		t.Fatal(err)
	}
	many := make([]Check, MaxRows+1)
	rows := []Contact{}
	for range MaxRows + 1 {
		rows = append(rows, Contact{Subject: strings.Repeat("ab", 16)})
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"not json":        []byte("<html>"),
		"other district":  answerBytes(func(a *Answer) { a.District = "d2" }),
		"other request":   answerBytes(func(a *Answer) { a.ID = strings.Repeat("0", 32) }),
		"version":         answerBytes(func(a *Answer) { a.V = 0 }),
		"too many checks": answerBytes(func(a *Answer) { a.Checks = many }),
		"too many rows":   answerBytes(func(a *Answer) { a.Checks[0].Contacts = rows }),
		"short subject":   answerBytes(func(a *Answer) { a.Checks[0].Contacts[0].Subject = "ab" }),
		"not hex":         answerBytes(func(a *Answer) { a.Checks[0].Contacts[0].Subject = strings.Repeat("zz", 16) }),
		"unknown field":   []byte(`{"v":1,"id":"` + testID + `","district":"d1","checks":[],"name":"张三"}`),
		"trailing":        append(answerBytes(func(*Answer) {}), '1'),
		"oversized":       append(answerBytes(func(*Answer) {}), []byte(strings.Repeat(" ", MaxAnswer))...),
	} {
		if _, err := ParseAnswer(b, "d1", testID); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseAnswer: an accepted answer is from the district asked, about
// the request, and within the row limits.
func FuzzParseAnswer(f *testing.F) {
	f.Add(answerBytes(func(*Answer) {}))
	f.Add([]byte(`{"v":1,"id":"` + testID + `","district":"d1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(b, "d1", testID)
		if err != nil {
			return
		}
		rows := 0
		for _, c := range a.Checks {
			rows += len(c.Contacts)
		}
		if a.District != "d1" || a.ID != testID || len(a.Checks) > MaxRows || rows > MaxRows {
			t.Fatalf("accepted %+v", a)
		}
	})
}
