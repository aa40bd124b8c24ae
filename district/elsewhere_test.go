package district_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// When the district changed a person's status elsewhere (a revocation of
// their passes pulled from the hub, newer than the last status change
// recorded here), issuing from this appliance's out-of-date register is
// refused until the status is recorded here; single and bulk issuing
// alike.
func TestIssue_StatusChangedElsewhere(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	req := district.IssueRequest{Name: "张三明", IDNumber: "11010519491231002X", Doses: 2, Actor: "desk"}
	iss, err := district.Issue(ctx, db, req)
	if err != nil {
		t.Fatal(err)
	}
	subject := iss.Person.Subject

	raw, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Made at the hub a minute from now (after the registration here);
	// a revocation of this appliance's own making (origin '') does not
	// count, nor does one of another person.
	at := time.Now().Add(time.Minute).UnixMilli()
	other := pass.Subject{1, 2, 3}
	for _, q := range []struct {
		target []byte
		origin string
	}{{subject[:], ""}, {other[:], "hub"}} {
		if _, err := raw.Exec(`INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (1, ?, ?, 'x', ?, ?)`,
			q.target, at, at, q.origin); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := district.Issue(ctx, db, req); err != nil {
		t.Fatalf("issue with no change elsewhere: %v", err)
	}
	if _, err := raw.Exec(`INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (1, ?, ?, '核酸阳性', ?, 'hub')`,
		subject[:], at, at); err != nil {
		t.Fatal(err)
	}
	var se *district.StatusElsewhereError
	_, err = district.Issue(ctx, db, req)
	if !errors.As(err, &se) || se.Subject != subject || se.Reason != "核酸阳性" || se.At.UnixMilli() != at ||
		!strings.Contains(err.Error(), "changed elsewhere") {
		t.Fatalf("issue after a change elsewhere: %v", err)
	}
	// The message dates the change on the district's clock, whatever the
	// server's zone.
	shanghai, _ := time.LoadLocation(store.DefaultTimeZone)
	if want := time.UnixMilli(at).In(shanghai).Format("2006-01-02 15:04"); !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not date the change %s in the district's zone", err, want)
	}
	if _, err := district.IssueRegistered(ctx, db, []pass.Subject{subject}, pass.Paper, "desk"); !errors.As(err, &se) {
		t.Fatalf("bulk issue after a change elsewhere: %v", err)
	}
	// Recording the status here (after the district's change) clears it.
	db.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := db.SetStatus(ctx, subject, pass.Red, "positive test at the district", "desk"); err != nil {
		t.Fatal(err)
	}
	iss, err = district.Issue(ctx, db, req)
	if err != nil {
		t.Fatalf("issue after recording the status: %v", err)
	}
	if iss.Claims.Color != pass.Red {
		t.Fatalf("colour %v, want red", iss.Claims.Color)
	}
}
