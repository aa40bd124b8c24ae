package district_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// TestCheckIDNumber_BadCheckDigit: a mainland number wrong only in its
// check digit is refused unless AllowBadCheckDigit is given; the option
// waives nothing else.
func TestCheckIDNumber_BadCheckDigit(t *testing.T) {
	const bad, good = "610113199001011234", "610113199001011230"
	if _, err := district.CheckIDNumber(bad, checkNow); !district.IsBadCheckDigit(err) {
		t.Fatalf("bad digit: %v", err)
	}
	if id, err := district.CheckIDNumber(" "+bad+" ", checkNow, district.AllowBadCheckDigit); err != nil || id != bad {
		t.Fatalf("allowed bad digit: %q %v", id, err)
	}
	if id, err := district.CheckIDNumber(good, checkNow); err != nil || id != good {
		t.Fatalf("good: %q %v", id, err)
	}
	for _, id := range []string{"610113199013011233", "61011319900101123Y"} {
		if _, err := district.CheckIDNumber(id, checkNow, district.AllowBadCheckDigit); err == nil || district.IsBadCheckDigit(err) {
			t.Errorf("%s: %v, want refused for what the option does not waive", id, err)
		}
	}
	if _, err := district.CheckID(store.IDMainland, bad, checkNow); !district.IsBadCheckDigit(err) {
		t.Fatalf("CheckID: %v", err)
	}
	if _, err := district.CheckID(store.IDMainland, bad, checkNow, district.AllowBadCheckDigit); err != nil {
		t.Fatalf("CheckID allowed: %v", err)
	}
}

// TestIssue_BadCheckDigit: Issue and SetStatus refuse a wrong check digit
// with an input error naming it, and accept it when asked explicitly; the
// person is then the same pseudonym the tracer finds.
func TestIssue_BadCheckDigit(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	const bad = "610113199001011234"
	_, err := district.Issue(ctx, db, district.IssueRequest{Name: "张三明", IDNumber: bad, Doses: -1, Actor: "desk"})
	var in *district.InputError
	if !errors.As(err, &in) || !district.IsBadCheckDigit(err) {
		t.Fatalf("issue: %v", err)
	}
	iss, err := district.Issue(ctx, db, district.IssueRequest{Name: "张三明", IDNumber: bad, Doses: -1, Actor: "desk", AllowBadCheckDigit: true})
	if err != nil {
		t.Fatal(err)
	}
	if iss.Person.IDType != store.IDMainland || iss.Claims.IDTail != "1234" {
		t.Fatalf("person %+v", iss.Person)
	}
	if _, err := district.SetStatus(ctx, db, bad, pass.Yellow, "contact", "cli"); !district.IsBadCheckDigit(err) {
		t.Fatalf("status: %v", err)
	}
	if _, err := district.SetStatus(ctx, db, bad, pass.Yellow, "contact", "cli", district.AllowBadCheckDigit); err != nil {
		t.Fatalf("status allowed: %v", err)
	}
	id, err := district.CheckIDNumber(bad, time.Now(), district.AllowBadCheckDigit)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := district.SubjectOf(ctx, db, id); s != iss.Claims.Subject {
		t.Fatal("the traced pseudonym is not the issued one")
	}
}

// TestPreview: the previewed claims are those the next issue signs, and
// previewing records nothing.
func TestPreview(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	p, _, err := district.Register(ctx, db, district.RegisterRequest{Name: "王五", IDType: store.IDPassport, IDNumber: "E7654321", Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.RecordTest(ctx, db, p.Subject, now.Add(-2*time.Hour), false, "desk"); err != nil {
		t.Fatal(err)
	}
	cs, err := district.Preview(ctx, db, []pass.Subject{p.Subject}, pass.Paper)
	if err != nil || len(cs) != 1 {
		t.Fatalf("preview: %v", err)
	}
	if _, err := district.Preview(ctx, db, []pass.Subject{{1}}, pass.Paper); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unregistered: %v", err)
	}
	iss, err := district.IssueRegistered(ctx, db, []pass.Subject{p.Subject}, pass.Paper, "desk")
	if err != nil {
		t.Fatal(err)
	}
	want := iss[0].Claims
	want.ID = pass.ID{}
	if cs[0] != want {
		t.Fatalf("preview %+v\nissued  %+v", cs[0], want)
	}
}

// FuzzCheckIDNumber: whatever is typed, AllowBadCheckDigit waives the
// check digit and nothing else: what passes without it passes with it
// unchanged, what fails with it fails without it, and an accepted number
// is 4 to 32 upper-case letters or digits.
func FuzzCheckIDNumber(f *testing.F) {
	for _, s := range []string{"610113199001011234", "610113199001011230", "11010519491231002x", "E1234567", " ６１０１１３ 199001011234", "61011319901301123X", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		strict, errStrict := district.CheckIDNumber(raw, checkNow)
		loose, errLoose := district.CheckIDNumber(raw, checkNow, district.AllowBadCheckDigit)
		if errStrict == nil && (errLoose != nil || loose != strict) {
			t.Fatalf("%q: strict %q, loose %q %v", raw, strict, loose, errLoose)
		}
		if errLoose != nil && errStrict == nil {
			t.Fatalf("%q: the option refused what the strict check took", raw)
		}
		if district.IsBadCheckDigit(errStrict) != (errStrict != nil && errLoose == nil) {
			t.Fatalf("%q: strict %v, loose %v: the option waived more than the check digit", raw, errStrict, errLoose)
		}
		if errLoose == nil {
			if len(loose) < 4 || len(loose) > 32 {
				t.Fatalf("%q accepted as %q", raw, loose)
			}
			for _, r := range loose {
				if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
					t.Fatalf("%q accepted as %q", raw, loose)
				}
			}
		}
	})
}
