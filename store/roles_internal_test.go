package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"testing"
)

// A hub and a gate made before roles upgrade in place: the district keeps
// its pseudonym key until told otherwise, the people the hub learnt from
// appliances get the appliance as registrar (those of its own desk none),
// and an enrolled appliance's role is unknown until its hub says.
func TestMigrate_Roles(t *testing.T) {
	ctx := t.Context()
	key := bytes.Repeat([]byte{0x5a}, 32)
	dir := t.TempDir()
	all := migrations
	// The schema before roles: the steps before the one that added them
	// (later steps come after it on an upgrade too).
	var before []string
	for i, m := range all {
		if bytes.Contains([]byte(m), []byte("-- roles:")) {
			before = all[:i]
			break
		}
	}
	if before == nil {
		t.Fatal("the roles migration is not in the list")
	}
	migrations = before
	db, err := Open(ctx, dir)
	if err != nil {
		migrations = all
		t.Fatal(err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`INSERT INTO district (id, district_id, name, pseudonym_key, appliance, created_ms) VALUES (1, 'xa', 'Xi''an', x'` + hex.EncodeToString(key) + `', 'hub', 0)`,
			`INSERT INTO appliances (id, name, may_issue, created_ms) VALUES (7, 'clinic', 1, 0)`,
			`INSERT INTO people (subject, masked_name, id_tail, color, doses, created_ms, updated_ms) VALUES (x'5b010000000000000000000000000000', '张*', '0001', 1, 0, 0, 0)`,
			`INSERT INTO people (subject, masked_name, id_tail, color, doses, created_ms, updated_ms) VALUES (x'5b020000000000000000000000000000', '李*', '0002', 1, 0, 0, 0)`,
			`INSERT INTO district_events (appliance_id, seq, kind, at_ms, body, received_ms) VALUES (7, 1, 'status', 0,
				'{"subject":"5B020000000000000000000000000000","to_color":1}', 0)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.District(ctx)
	if err != nil || !bytes.Equal(d.PseudonymKey, key) || d.ID != "xa" || d.Appliance != "hub" {
		t.Fatalf("district after the upgrade: %+v, %v", d, err)
	}
	for _, c := range []struct {
		subject string
		want    sql.NullInt64
	}{{"5b020000000000000000000000000000", sql.NullInt64{Int64: 7, Valid: true}}, {"5b010000000000000000000000000000", sql.NullInt64{}}} {
		var got sql.NullInt64
		if err := db.r.QueryRowContext(ctx, `SELECT registrar FROM people WHERE hex(subject) = upper(?)`, c.subject).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("registrar of %s: %+v, want %+v", c.subject, got, c.want)
		}
	}
	if r, err := db.HubRole(ctx); err != nil || r != "" {
		t.Fatalf("role on a hub: %q, %v", r, err)
	}
	// A district without a key is now allowed, one with a short key not.
	if _, err := db.w.ExecContext(ctx, `UPDATE district SET pseudonym_key = NULL`); err != nil {
		t.Fatalf("a district without a pseudonym key: %v", err)
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE district SET pseudonym_key = x'00'`); err == nil {
		t.Fatal("a 1-byte pseudonym key was stored")
	}
}

// FuzzAuthorizeEvent feeds hostile record bodies of every kind to the
// hub's decision: from a gate everything but audit records is refused,
// from an office nothing fails the push (a record it cannot read is a
// refusal, not an error that would jam the appliance's outbox).
func FuzzAuthorizeEvent(f *testing.F) {
	for _, seed := range []struct{ kind, body string }{
		{"status", `{"subject":"5B020000000000000000000000000000","to_color":3}`},
		{"status", `{"subject":"zz"}`},
		{"pass", `{"kid":"0102030405060708"}`},
		{"revocation", `{"kind":3,"target":"0102030405060708"}`},
		{"revocation", `{"kind":1,"target":"5B020000000000000000000000000000","before_ms":1}`},
		{"revocation", `{"kind":2,"target":"5b0200000000000000000000"}`},
		{"revocation", `{"kind":2,"target":"' OR 1=1 --"}`},
		{"audit", `{}`},
		{"status", `[]`},
		{"pass", `{"kid":7}`},
	} {
		f.Add(seed.kind, seed.body)
	}
	ctx := context.Background()
	db, err := Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	office := &Appliance{ID: 1, Name: "office", Role: ApplianceOffice, HasIssuer: true, IssuerKID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	gate := &Appliance{ID: 2, Name: "gate", Role: ApplianceGate}
	f.Fuzz(func(t *testing.T, kind, body string) {
		if len(body) > MaxEventBody {
			return
		}
		e := &OutboxRecord{Seq: 1, Kind: kind, Body: body}
		err := db.view(ctx, func(tx *sql.Tx) error {
			why, err := authorizeEvent(ctx, tx, gate, e)
			if err != nil {
				return err
			}
			if (why == "") != (kind == "audit") {
				t.Fatalf("gate %s %q: refusal %q", kind, body, why)
			}
			_, err = authorizeEvent(ctx, tx, office, e)
			return err
		})
		if err != nil {
			t.Fatalf("office %s %q: %v", kind, body, err)
		}
	})
}
