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

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSetup(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	res, err := district.EnsureSetup(ctx, db, district.SetupOptions{Name: "雁塔区"})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.AdminPassword) != 16 || res.District.Name != "雁塔区" {
		t.Fatalf("setup result %+v", res)
	}
	t.Run("AdminPasswordWorks", func(t *testing.T) {
		u, err := db.FindUserByName(ctx, res.AdminUser)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := store.VerifyPassword(u.PasswordHash, res.AdminPassword); err != nil || !ok || u.Role != store.UserAdmin {
			t.Fatalf("admin %+v cannot log in: %v %v", u, ok, err)
		}
	})
	t.Run("IssuerCertifiedByRoot", func(t *testing.T) {
		roots, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
		if err != nil || len(roots) != 1 {
			t.Fatalf("roots %v %v", roots, err)
		}
		root, err := pass.ParsePublicKey(roots[0].Alg, roots[0].Public)
		if err != nil {
			t.Fatal(err)
		}
		k, err := db.SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pass.ParseCert(k.Cert, []pass.Root{{District: roots[0].District, Key: root}})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Key.KID != k.KID || cert.District != res.District.ID || !cert.NotAfter.After(time.Now().Add(365*24*time.Hour)) {
			t.Fatalf("certificate %+v for key %s", cert, k.KID)
		}
	})
	t.Run("SecondSetupIsANoop", func(t *testing.T) {
		again, err := district.EnsureSetup(ctx, db, district.SetupOptions{})
		if err != nil || again != nil {
			t.Fatalf("second setup: %+v %v", again, err)
		}
		d, err := db.District(ctx)
		if err != nil || d.ID != res.District.ID {
			t.Fatalf("district changed: %v %v", d, err)
		}
	})
}

func TestIssue(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	tested := time.Now().Add(-3 * time.Hour).Truncate(time.Second)

	t.Run("OK", func(t *testing.T) {
		iss, err := district.Issue(ctx, db, district.IssueRequest{
			Name: "欧阳娜娜", IDNumber: " 11010519491231002x ", TestedAt: tested, Doses: 3, Kind: pass.Paper, Actor: "desk",
		})
		if err != nil {
			t.Fatal(err)
		}
		c := iss.Claims
		if c.Name != "欧**娜" || c.IDTail != "002X" || c.Color != pass.Green || c.Doses != 3 || !c.TestedAt.Equal(tested) || c.Kind != pass.Paper {
			t.Fatalf("claims %+v", c)
		}
		if got := c.ExpiresAt.Sub(c.IssuedAt); got != pass.PaperValidity {
			t.Fatalf("paper validity %s", got)
		}
		rec, err := db.FindPass(ctx, c.ID)
		if err != nil || rec.Actor != "desk" || rec.Subject != c.Subject {
			t.Fatalf("issued pass not recorded: %+v %v", rec, err)
		}
		// The same person by the same number, typed differently.
		again, err := district.Issue(ctx, db, district.IssueRequest{IDNumber: "11010519491231002X", Doses: -1, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Claims.Subject != c.Subject {
			t.Fatal("one person got two pseudonyms")
		}
	})
	t.Run("KeepsRegisteredValues", func(t *testing.T) {
		first, err := district.Issue(ctx, db, district.IssueRequest{Name: "李四", IDNumber: "G12345678", TestedAt: tested, Doses: 2, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		second, err := district.Issue(ctx, db, district.IssueRequest{IDNumber: "g12345678", Doses: -1, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		if second.Claims.Subject != first.Claims.Subject || second.Claims.Doses != 2 || !second.Claims.TestedAt.Equal(tested) || second.Claims.Name != "李*" {
			t.Fatalf("re-issue lost registered values: %+v", second.Claims)
		}
	})
	t.Run("ColourChangeIsAStatusChange", func(t *testing.T) {
		first, err := district.Issue(ctx, db, district.IssueRequest{Name: "王五", IDNumber: "E7654321", Doses: -1, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		red, err := district.Issue(ctx, db, district.IssueRequest{IDNumber: "E7654321", Color: pass.Red, Doses: -1, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		hist, err := db.StatusHistory(ctx, first.Claims.Subject)
		if err != nil || len(hist) != 2 || hist[1].To != pass.Red || hist[1].Actor != "desk" {
			t.Fatalf("history %v %v", hist, err)
		}
		cutoff, err := db.SubjectCutoff(ctx, first.Claims.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if !first.Claims.IssuedAt.Before(cutoff) || red.Claims.IssuedAt.Before(cutoff) {
			t.Fatalf("cutoff %s must void the first pass (%s) and not the second (%s)", cutoff, first.Claims.IssuedAt, red.Claims.IssuedAt)
		}
	})

	bad := []struct {
		name string
		req  district.IssueRequest
	}{
		{"NoID", district.IssueRequest{Name: "a"}},
		{"ShortID", district.IssueRequest{Name: "a", IDNumber: "123"}},
		{"LongID", district.IssueRequest{Name: "a", IDNumber: "123456789012345678901234567890123"}},
		{"IDWithSymbols", district.IssueRequest{Name: "a", IDNumber: "1234-5678"}},
		{"NoName", district.IssueRequest{IDNumber: "N0000001"}},
		{"ControlInName", district.IssueRequest{Name: "a\x07b", IDNumber: "N0000002"}},
		{"LongName", district.IssueRequest{Name: string(make([]rune, 65)), IDNumber: "N0000003"}},
		{"FutureTest", district.IssueRequest{Name: "a", IDNumber: "N0000004", TestedAt: time.Now().Add(time.Hour)}},
		{"TooManyDoses", district.IssueRequest{Name: "a", IDNumber: "N0000005", Doses: 256}},
		{"BadColour", district.IssueRequest{Name: "a", IDNumber: "N0000006", Color: 7}},
		{"BadKind", district.IssueRequest{Name: "a", IDNumber: "N0000007", Kind: 9}},
	}
	for _, tt := range bad {
		t.Run("Err"+tt.name, func(t *testing.T) {
			tt.req.Actor = "desk"
			_, err := district.Issue(ctx, db, tt.req)
			var in *district.InputError
			if !errors.As(err, &in) || in.Msg == "" {
				t.Fatalf("err = %v, want an input error", err)
			}
		})
	}
}

func TestSetStatus(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := district.Setup(ctx, db, district.SetupOptions{AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	var in *district.InputError
	if _, err := district.SetStatus(ctx, db, "N1234567", pass.Red, "positive", "cli"); !errors.As(err, &in) {
		t.Fatalf("unregistered person: %v", err)
	}
	if _, err := district.Issue(ctx, db, district.IssueRequest{Name: "赵六", IDNumber: "N1234567", Doses: -1, Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(ctx, db, "N1234567", pass.Red, "  ", "cli"); !errors.As(err, &in) {
		t.Fatalf("blank reason: %v", err)
	}
	ch, err := district.SetStatus(ctx, db, "n1234567", pass.Yellow, "close contact", "cli")
	if err != nil || ch.From != pass.Green || ch.To != pass.Yellow || ch.Reason != "close contact" {
		t.Fatalf("status change %+v %v", ch, err)
	}
}
