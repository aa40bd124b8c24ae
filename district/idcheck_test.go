package district_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

var checkNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestCheckMainlandID(t *testing.T) {
	tests := []struct {
		id   string
		code string // "" when valid
	}{
		{"11010519491231002X", ""}, // the standard's own example, check character X
		{"610113199001011230", ""},
		{"440304198506150015", ""},
		{"32010220000229003X", ""}, // 29 February of a leap year
		{"110105194912310021", "check_digit"},
		{"610113199001011231", "check_digit"},
		{"61011319900101123X", "check_digit"},
		{"320102200102290039", "id_birth"}, // 2001 is not a leap year
		{"610113199013011233", "id_birth"}, // month 13
		{"610113203001011234", "id_birth"}, // born in the future
		{"610113180001011234", "id_birth"}, // before 1900
		{"61011319900101123", "id_length"},
		{"6101131990010112300", "id_length"},
		{"", "id_length"},
		{"6101131990010112A0", "id_format"},
		{"61011319900101123Y", "id_format"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := district.CheckMainlandID(tt.id, checkNow)
			var fe *store.FieldError
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("valid ID rejected: %v", err)
			case tt.code != "" && (!errors.As(err, &fe) || fe.Code != "desk.err."+tt.code || fe.Field != "id_number"):
				t.Fatalf("error %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		idType, raw, want, field, code string
	}{
		{store.IDMainland, " 11010519491231002x ", "11010519491231002X", "", ""}, // lower-case x and spaces normalised
		{store.IDMainland, "１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", "", ""},
		{store.IDMainland, "110105194912310021", "", "id_number", "check_digit"},
		{store.IDPassport, "E12345678", "E12345678", "", ""},
		{store.IDPassport, "e1234", "E1234", "", ""},
		{store.IDPassport, "E12", "", "id_number", "doc_format"},
		{store.IDOther, "H-1234567", "", "id_number", "doc_format"},
		{store.IDOther, "A23456789012345678901234567890123", "", "id_number", "doc_format"}, // 33 characters
		{store.IDOther, "", "", "id_number", "required"},
		{"", "E12345678", "", "id_type", "required"},
		{"driving", "E12345678", "", "id_type", "unknown"},
	}
	for _, tt := range tests {
		got, err := district.CheckID(tt.idType, tt.raw, checkNow)
		var fe *store.FieldError
		if tt.code == "" {
			if err != nil || got != tt.want {
				t.Errorf("CheckID(%q, %q) = %q, %v; want %q", tt.idType, tt.raw, got, err, tt.want)
			}
			continue
		}
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Code != "desk.err."+tt.code {
			t.Errorf("CheckID(%q, %q) error %v; want %s/%s", tt.idType, tt.raw, err, tt.field, tt.code)
		}
	}
}

func TestCheckPhone(t *testing.T) {
	for raw, want := range map[string]string{"": "", "138 0013 8000": "13800138000", "+86-138-0013-8000": "8613800138000", "１３８": "138"} {
		if got, err := district.CheckPhone(raw); err != nil || got != want {
			t.Errorf("CheckPhone(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"138x", "123456789012345678901", "1+2"} {
		if _, err := district.CheckPhone(raw); err == nil {
			t.Errorf("CheckPhone(%q) accepted", raw)
		}
	}
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	req := district.RegisterRequest{Name: "王小明", IDType: store.IDMainland, IDNumber: "11010519491231002X", Phone: "13800138000", Actor: "issuer1"}
	p, created, err := district.Register(ctx, db, req)
	if err != nil || !created {
		t.Fatalf("register: %v created=%v", err, created)
	}
	if p.MaskedName != "王*明" || p.IDTail != "002X" || p.IDType != store.IDMainland || p.Phone != "13800138000" || p.Color != pass.Green {
		t.Fatalf("person %+v", p)
	}
	// Red, then registered again: the registration does not clear the status.
	if _, err := district.SetSubjectStatus(ctx, db, p.Subject, pass.Red, "contact", "issuer1"); err != nil {
		t.Fatal(err)
	}
	req.Phone = ""
	p2, created, err := district.Register(ctx, db, req)
	if err != nil || created || p2.Subject != p.Subject || p2.Color != pass.Red || p2.Phone != "" {
		t.Fatalf("re-register: %+v created=%v err=%v", p2, created, err)
	}

	// Every wrong field is reported at once.
	_, _, err = district.Register(ctx, db, district.RegisterRequest{IDType: store.IDMainland, IDNumber: "110105194912310021", Phone: "abc", Actor: "x"})
	var fes store.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 3 {
		t.Fatalf("err %v, want three field errors", err)
	}
	got := map[string]string{}
	for _, fe := range fes {
		got[fe.Field] = strings.TrimPrefix(fe.Code, "desk.err.")
	}
	if got["name"] != "required" || got["id_number"] != "check_digit" || got["phone"] != "phone_format" {
		t.Fatalf("field errors %v", got)
	}
}

func TestRecordTest(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	p, _, err := district.Register(ctx, db, district.RegisterRequest{Name: "李四", IDType: store.IDPassport, IDNumber: "E1234567", Actor: "i"})
	if err != nil {
		t.Fatal(err)
	}
	now := db.Now()
	var fe *store.FieldError
	if _, err := district.RecordTest(ctx, db, p.Subject, now.Add(time.Hour), false, "i"); !errors.As(err, &fe) || fe.Code != "desk.err.future" {
		t.Fatalf("future sample: %v", err)
	}
	at := now.Add(-3 * time.Hour).Truncate(time.Millisecond)
	if changed, err := district.RecordTest(ctx, db, p.Subject, at, false, "i"); err != nil || !changed {
		t.Fatalf("negative: %v %v", changed, err)
	}
	if changed, err := district.RecordTest(ctx, db, p.Subject, at.Add(-time.Hour), false, "i"); err != nil || changed {
		t.Fatalf("older negative changed the person: %v %v", changed, err)
	}
	got, _ := db.FindPerson(ctx, p.Subject)
	if !got.TestedAt.Equal(at) {
		t.Fatalf("tested at %v, want %v", got.TestedAt, at)
	}
	if changed, err := district.RecordTest(ctx, db, p.Subject, now, true, "i"); err != nil || !changed {
		t.Fatalf("positive: %v %v", changed, err)
	}
	if changed, err := district.RecordTest(ctx, db, p.Subject, now, true, "i"); err != nil || changed {
		t.Fatalf("positive again changed the person: %v %v", changed, err)
	}
	h, _ := db.StatusHistory(ctx, p.Subject)
	if got, _ := db.FindPerson(ctx, p.Subject); got.Color != pass.Red || len(h) != 2 || h[1].Reason != store.ReasonPositive {
		t.Fatalf("after positive: %+v, history %d", got, len(h))
	}
	if _, err := district.RecordTest(ctx, db, pass.Subject{1}, now, false, "i"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown subject: %v", err)
	}
}

func TestIssueRegistered(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	p, _, err := district.Register(ctx, db, district.RegisterRequest{Name: "赵六", IDType: store.IDMainland, IDNumber: "610113199001011230", Actor: "i"})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := district.IssueRegistered(ctx, db, []pass.Subject{p.Subject, p.Subject}, pass.Paper, "i")
	if err != nil || len(iss) != 2 {
		t.Fatalf("issue: %v", err)
	}
	if iss[0].Claims.ID == iss[1].Claims.ID || iss[0].Claims.Kind != pass.Paper || iss[0].Claims.Name != "赵*" || iss[0].Claims.IDTail != "1230" {
		t.Fatalf("claims %+v", iss[0].Claims)
	}
	if _, err := db.FindPass(ctx, iss[1].Claims.ID); err != nil {
		t.Fatalf("pass not recorded: %v", err)
	}
	if _, err := district.IssueRegistered(ctx, db, []pass.Subject{{9}}, pass.Paper, "i"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown subject: %v", err)
	}
}
