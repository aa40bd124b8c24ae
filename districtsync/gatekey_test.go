package districtsync

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// The red-coded people of the enumeration test: mainland ID numbers
// (birth date × region × sequence, the space an attacker enumerates).
var redIDs = []string{"610113199001011230", "610113198512120012", "610113197703040029", "61011320010228003X"}

// A gate holds nothing that turns a pseudonym back into an ID number: a
// gate that synced with a hub with red-coded people (their pseudonyms
// in its revocation list and scan log) is searched, every table, every
// value and every 32-byte window of every file in its data directory,
// for a key under which an ID number of those people gives a pseudonym
// it stores. The same search finds the pseudonym key in an office's
// directory, so the search is one that works.
//
// Only the people's true ID numbers are tried, not their whole birth
// date × region × sequence space: a key that gives a stored pseudonym
// for none of the true numbers gives none for the space around them
// (short of an HMAC collision), and trying fewer numbers keeps every
// byte offset of every file affordable.
func TestRoles_GateCannotEnumerateIDs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	officeDir, gateDir := t.TempDir(), t.TempDir()
	office, cO := h.enrolIn(t, "office-1", true, officeDir)
	gate, cG := h.enrolIn(t, "gate-1", false, gateDir)

	if role, err := gate.HubRole(ctx); err != nil || role != store.ApplianceGate {
		t.Fatalf("gate's role: %q, %v", role, err)
	}
	if d, err := gate.District(ctx); err != nil || d.PseudonymKey != nil {
		t.Fatalf("the gate was enrolled with a pseudonym key (%v)", err)
	}
	// Half the people at the hub's desk, half at the office; all turn red.
	var texts []string
	for i, id := range redIDs {
		db := h.db
		if i%2 == 1 {
			db = office
		}
		iss, err := district.Issue(ctx, db, district.IssueRequest{Name: "张三明", IDNumber: id,
			TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, iss.Text)
		if _, err := district.SetStatus(ctx, db, id, pass.Red, "positive test", "desk"); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, office, cO)
	for _, db := range []*store.DB{gate, office} {
		c := cG
		if db == office {
			c = cO
		}
		if _, err := PullOnce(ctx, db, c); err != nil {
			t.Fatal(err)
		}
	}
	// The gate checks every pass: its scan log holds the pseudonyms too.
	chk, err := check.New(ctx, check.Config{DB: gate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	for _, text := range texts {
		d, err := chk.Check(ctx, "gate-1", text)
		if err != nil {
			t.Fatal(err)
		}
		if d.Reason != check.ReasonRevoked {
			t.Fatalf("a red-coded person's earlier pass at the gate: %s, want revoked", d.Reason)
		}
	}
	drain(t, gate, cG)
	// The CLI's and the pages' ways in refuse on the gate.
	if _, err := district.Issue(ctx, gate, district.IssueRequest{Name: "张三明", IDNumber: redIDs[0], Actor: "x"}); !errors.Is(err, store.ErrGate) {
		t.Fatalf("issuing at the gate: %v, want ErrGate", err)
	}
	if _, err := district.SetStatus(ctx, gate, redIDs[0], pass.Green, "x", "x"); !errors.Is(err, store.ErrGate) {
		t.Fatalf("a status change at the gate: %v, want ErrGate", err)
	}
	if _, err := district.SubjectOf(ctx, gate, redIDs[0]); !errors.Is(err, store.ErrGate) {
		t.Fatalf("a pseudonym at the gate: %v, want ErrGate", err)
	}
	gate.Close()
	office.Close()

	subjects := map[pass.Subject]bool{}
	for _, id := range redIDs {
		subjects[pass.Pseudonym(hubKey(t, h.db), id)] = true
	}
	if key, at := enumerate(t, gateDir, subjects, true); key != nil {
		t.Fatalf("the gate's data directory holds a key that turns pseudonyms into ID numbers (%s)", at)
	}
	if key, _ := enumerate(t, officeDir, subjects, false); key == nil {
		t.Fatal("the same search found nothing in an office's directory: it would find nothing anywhere")
	}
}

func hubKey(t *testing.T, db *store.DB) []byte {
	t.Helper()
	d, err := db.District(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return d.PseudonymKey
}

var hex32 = regexp.MustCompile(`[0-9A-Fa-f]{32,}`)

// enumerate searches the data directory dir for a key under which one of
// redIDs gives a pseudonym stored there, and returns it with where it
// was found. With mustHold, it first checks that the directory does hold
// the people's pseudonyms (wantSubjects): otherwise finding nothing
// would prove nothing.
func enumerate(t *testing.T, dir string, wantSubjects map[pass.Subject]bool, mustHold bool) ([]byte, string) {
	t.Helper()
	ks := &keySearch{stored: map[pass.Subject]bool{}}
	ks.readDatabase(t, dir)
	stored, candidates := ks.stored, ks.candidates
	if mustHold {
		for s := range wantSubjects {
			if !stored[s] {
				t.Fatalf("%s does not hold the pseudonym %x: the search would prove nothing", dir, s[:])
			}
		}
	}
	try := func(key []byte) bool {
		for _, id := range redIDs {
			if stored[pass.Pseudonym(key, id)] {
				return true
			}
		}
		return false
	}
	for _, c := range candidates {
		if try(c) {
			return c, "a database value"
		}
	}
	return searchFiles(t, dir, try)
}

// keySearch is what enumerate gathers from a database: the subjects
// stored, and every value that might be a key.
type keySearch struct {
	stored     map[pass.Subject]bool
	candidates [][]byte
}

func (ks *keySearch) addSubject(b []byte) {
	if len(b) == len(pass.Subject{}) {
		ks.stored[pass.Subject(b)] = true
	}
}

// addValue takes a value as it is, decoded from hex at every offset and
// decoded from base64.
func (ks *keySearch) addValue(b []byte) {
	if len(b) < 8 {
		return
	}
	ks.candidates = append(ks.candidates, bytes.Clone(b))
	ks.addSubject(b)
	for _, m := range hex32.FindAll(b, -1) {
		for _, l := range []int{32, 64} { // 16-byte subjects, 32-byte keys, at every offset
			for i := 0; i+l <= len(m); i += 2 {
				if dec, err := hex.DecodeString(string(m[i : i+l])); err == nil {
					ks.candidates = append(ks.candidates, dec)
					ks.addSubject(dec)
				}
			}
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(string(b)); err == nil && len(dec) >= 8 {
			ks.candidates = append(ks.candidates, dec)
		}
	}
}

// readDatabase adds every value of every table of dir's database.
func (ks *keySearch) readDatabase(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					ks.addValue(v)
				case string:
					ks.addValue([]byte(v))
				}
			}
		}
		rs.Close()
	}
	db.Close()
}

// searchFiles tries every 32-byte window of every file in dir (the
// pseudonym key's length).
func searchFiles(t *testing.T, dir string, try func([]byte) bool) ([]byte, string) {
	t.Helper()
	var found []byte
	var where string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i := 0; i+32 <= len(b); i++ {
			if try(b[i : i+32]) {
				found, where = bytes.Clone(b[i:i+32]), filepath.Base(path)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, where
}

// A gate enrolled before roles holds the pseudonym key; the first feed
// answer that says it is a gate removes it, from the file too.
func TestRoles_GateEnrolledBeforeRolesDropsKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newPushHub(t)
	code, err := NewCode(h.pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.AddAppliance(ctx, "old-gate", store.ApplianceGate, code.Hash(), time.Now().Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	p, err := NewPending(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := EnrolAppliance(ctx, h.db, &p.Request, h.ca, "test", "file test")
	if err != nil {
		t.Fatal(err)
	}
	if resp.District.PseudonymKey != nil || resp.Role != string(store.ApplianceGate) {
		t.Fatalf("enrolment answer to a gate: role %q, key sent %v", resp.Role, resp.District.PseudonymKey != nil)
	}
	// What an older hub answered: no role, the key for everyone.
	key := hubKey(t, h.db)
	resp.Role, resp.District.PseudonymKey = "", key
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Complete(ctx, db, h.url(), p, resp, "appliance admin pw"); err != nil {
		t.Fatal(err)
	}
	if d, _ := db.District(ctx); !bytes.Equal(d.PseudonymKey, key) {
		t.Fatal("the legacy enrolment did not keep the key: nothing to test")
	}
	res, err := PullOnce(ctx, db, newPushClient(t, db))
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeyDropped {
		t.Fatalf("pull result %+v, want the key dropped", res)
	}
	if d, _ := db.District(ctx); d.PseudonymKey != nil {
		t.Fatal("the gate still holds the pseudonym key")
	}
	if role, _ := db.HubRole(ctx); role != store.ApplianceGate {
		t.Fatalf("role after the pull: %q", role)
	}
	if _, err := district.SubjectOf(ctx, db, redIDs[0]); !errors.Is(err, store.ErrGate) {
		t.Fatalf("a pseudonym at the gate: %v, want ErrGate", err)
	}
	db.Close()
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, key) {
			t.Errorf("%s still holds the pseudonym key's bytes", filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
