package district_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// issueFixture is a set-up district with one registered person.
type issueFixture struct {
	db      *store.DB
	req     district.IssueRequest // registers the person
	subject pass.Subject
}

func newIssueFixture(t *testing.T) *issueFixture {
	t.Helper()
	ctx := context.Background()
	f := &issueFixture{db: openDB(t)}
	if _, err := district.Setup(ctx, f.db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	f.req = district.IssueRequest{Name: "王五", IDNumber: "E7654321", Doses: 1, Actor: "desk"}
	iss, err := district.Issue(ctx, f.db, f.req)
	if err != nil {
		t.Fatal(err)
	}
	f.subject = iss.Person.Subject
	return f
}

// state is what an issue may change: the register entry, the status
// history, the revocation cutoff and the audit trail.
type issueState struct {
	person   store.Person
	history  int
	cutoff   time.Time
	auditSeq int64
}

func (f *issueFixture) state(t *testing.T) issueState {
	t.Helper()
	ctx := context.Background()
	p, err := f.db.FindPerson(ctx, f.subject)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := f.db.StatusHistory(ctx, f.subject)
	if err != nil {
		t.Fatal(err)
	}
	cutoff, err := f.db.SubjectCutoff(ctx, f.subject)
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := f.db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return issueState{person: *p, history: len(hist), cutoff: cutoff, auditSeq: seq}
}

// An issue refused or failing at its last step (signing and recording
// the pass) leaves nothing of its earlier steps (the status change, the
// register update) behind.
func TestIssue_FailureLeavesNothingCommitted(t *testing.T) {
	ctx := context.Background()
	t.Run("StatusChangedElsewhere", func(t *testing.T) {
		f := newIssueFixture(t)
		raw, err := sql.Open("sqlite", f.db.Path()+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		at := time.Now().Add(time.Minute).UnixMilli()
		if _, err := raw.Exec(`INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (1, ?, ?, 'x', ?, 'hub')`,
			f.subject[:], at, at); err != nil {
			t.Fatal(err)
		}
		before := f.state(t)
		req := f.req
		req.Name, req.Doses = "王五六", 3
		var se *district.StatusElsewhereError
		if _, err := district.Issue(ctx, f.db, req); !errors.As(err, &se) {
			t.Fatalf("issue = %v, want a StatusElsewhereError", err)
		}
		if after := f.state(t); after != before {
			t.Fatalf("a refused issue changed\n%+v\nto\n%+v", before, after)
		}
	})
	t.Run("ColourChangeWithExpiredIssuer", func(t *testing.T) {
		f := newIssueFixture(t)
		k, err := f.db.SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Past the issuer certificate, a pass would expire before it is
		// issued: recording it fails, after the status change to red.
		late := k.NotAfter.Add(time.Hour)
		f.db.Now = func() time.Time { return late }
		before := f.state(t)
		req := f.req
		req.Color, req.Doses = pass.Red, 2
		if _, err := district.Issue(ctx, f.db, req); err == nil {
			t.Fatal("issued a pass past the issuer's certificate")
		}
		if after := f.state(t); after != before {
			t.Fatalf("a failed issue changed\n%+v\nto\n%+v", before, after)
		}
	})
}
