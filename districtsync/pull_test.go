package districtsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// doPlain calls handler in process with a JSON body and token.
func doPlain(t *testing.T, handler http.Handler, path string, body any, token string) *httptest.ResponseRecorder {
	t.Helper()
	b, _ := json.Marshal(body)
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	return w
}

func clientOf(t *testing.T, db *store.DB) *Client {
	t.Helper()
	h, err := db.SyncHubInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClientCA(h.URL, h.HubCA, h.Token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

func TestPull_AppliesFeed(t *testing.T) {
	ctx := t.Context()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-1", false)
	c := clientOf(t, app)

	// Changes at the hub: a subject and a pass revoked, the policy
	// changed, and an issuing appliance enrolled then retired.
	subject := pass.Subject{1, 2, 3}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokeSubject, Target: subject[:], Reason: "status red"}); err != nil {
		t.Fatal(err)
	}
	pid := pass.ID{9, 9, 9}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	pol, _ := h.db.Policy(ctx)
	pol.MinDoses = 2
	pol.Colors = []pass.Color{pass.Green, pass.Yellow}
	pol.TimeZone = "Asia/Urumqi"     // the district's dates follow to its appliances
	time.Sleep(2 * time.Millisecond) // a policy version strictly newer than enrolment's
	if err := h.db.ChangePolicy(ctx, pol, "hubadmin"); err != nil {
		t.Fatal(err)
	}
	issuing := enrolled(t, h, "desk-1", true)
	ik, err := issuing.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}

	res, err := PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revocations != 2 || !res.PolicyChanged || res.KeysAdded != 1 {
		t.Fatalf("first pull: %+v", res)
	}
	ap, _ := app.Policy(ctx)
	if ap.MinDoses != 2 || len(ap.Colors) != 2 || ap.UpdatedBy != store.ActorHub || ap.TimeZone != "Asia/Urumqi" {
		t.Fatalf("policy at the appliance %+v", ap)
	}
	// The retirement revokes desk-1's key everywhere.
	if _, err := h.db.RetireAppliance(ctx, "desk-1", "stolen", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	res, err = PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revocations != 1 || res.KeysRevoked+boolInt(res.KeysAdded == 0) < 1 {
		t.Fatalf("pull after retirement: %+v", res)
	}
	keys, _ := app.FindKeys(ctx, store.KeyFilter{Role: store.RoleIssuer})
	revoked := false
	for _, k := range keys {
		if k.KID == ik.KID {
			revoked = !k.RevokedAt.IsZero()
		}
	}
	if !revoked {
		t.Fatal("the retired appliance's issuer key is not revoked at the appliance")
	}
	revs, _ := app.RevocationsSince(ctx, 0)
	kinds := map[store.RevocationKind]int{}
	for _, r := range revs {
		kinds[r.Kind]++
	}
	if kinds[store.RevokeSubject] != 1 || kinds[store.RevokePass] != 1 || kinds[store.RevokeIssuer] != 1 {
		t.Fatalf("revocations at the appliance: %v", kinds)
	}
	// Nothing new: a pull changes nothing and stores nothing twice.
	res, err = PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revocations+res.KeysAdded+res.KeysRevoked != 0 || res.PolicyChanged {
		t.Fatalf("idle pull changed %+v", res)
	}
	if again, _ := app.RevocationsSince(ctx, 0); len(again) != len(revs) {
		t.Fatalf("%d revocations after an idle pull, want %d", len(again), len(revs))
	}
	// The hub saw the appliance and how far it got.
	a, _ := h.db.ApplianceByName(ctx, "gate-1")
	if a.LastContact.IsZero() || a.RevocSeq == 0 {
		t.Fatalf("hub's record of the appliance %+v", a)
	}
	// Revocations pulled from the hub are not sent back up.
	if n, _ := app.SyncBacklog(ctx); n > 10 {
		t.Fatalf("backlog %d: pulled revocations went into the outbox", n)
	}
	// The retired appliance's token is refused with a clear code.
	_, err = PullOnce(ctx, issuing, clientOf(t, issuing))
	var ce *CallError
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Err.Code != "retired" {
		t.Fatalf("pull by a retired appliance: %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPull_Auth(t *testing.T) {
	t.Parallel()
	h := newEnrHub(t)
	srv := NewServer(ServerConfig{DB: h.db}).Handler()
	for name, tok := range map[string]string{
		"none":      "",
		"garbage":   "!!!",
		"unknown":   encodeToken(bytes.Repeat([]byte{1}, tokenSize)),
		"too short": encodeToken([]byte{1, 2, 3}),
	} {
		rec := doPlain(t, srv, PathPull, &PullRequest{}, tok)
		var e Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusUnauthorized || e.Code != "unauthorized" {
			t.Errorf("%s token: %d %+v", name, rec.Code, e)
		}
	}
	// A GET is not a sync call.
	r := httptest.NewRequest(http.MethodGet, PathPull, nil)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET answered %d", w.Code)
	}
}

func TestPull_RevocationPages(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	for i := range 7 {
		id := pass.ID{byte(i + 1)}
		if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: id[:], Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	list, more, err := h.db.RevocationsPage(ctx, 0, 3)
	if err != nil || len(list) != 3 || !more {
		t.Fatalf("first page: %d %v %v", len(list), more, err)
	}
	list2, more, _ := h.db.RevocationsPage(ctx, list[2].Seq, 3)
	list3, more3, _ := h.db.RevocationsPage(ctx, list2[2].Seq, 3)
	if len(list2) != 3 || !more || len(list3) != 1 || more3 || list3[0].Seq <= list2[2].Seq {
		t.Fatalf("pages: %d %v, %d %v", len(list2), more, len(list3), more3)
	}
}

func TestTrustHash(t *testing.T) {
	t.Parallel()
	k1 := &store.Key{KID: pass.KeyID{1}, Role: "root", Alg: pass.AlgEdDSA, Public: []byte{1}, District: "D"}
	k2 := &store.Key{KID: pass.KeyID{2}, Role: "issuer", Alg: pass.AlgEdDSA, Public: []byte{2}, District: "D"}
	a := TrustHash([]*store.Key{k1, k2})
	if !bytes.Equal(a, TrustHash([]*store.Key{k2, k1})) {
		t.Fatal("the hash depends on the order of the keys")
	}
	k2r := *k2
	k2r.RevokedAt = time.UnixMilli(5)
	if bytes.Equal(a, TrustHash([]*store.Key{k1, &k2r})) {
		t.Fatal("a revocation does not change the hash")
	}
	// Moving a byte between fields changes the hash.
	k3 := *k2
	k3.District, k3.Role = "Dissuer", ""
	if bytes.Equal(a, TrustHash([]*store.Key{k1, &k3})) {
		t.Fatal("field boundaries are ambiguous")
	}
}

func TestTrustKeysFromWire_Hostile(t *testing.T) {
	t.Parallel()
	k, _ := pass.GenerateKey(pass.AlgEdDSA, bytes.NewReader(bytes.Repeat([]byte{4}, 32)))
	good := TrustKey{KID: k.Public().KID[:], Role: "issuer", Alg: int(pass.AlgEdDSA), Public: k.Public().Raw, District: "D1"}
	if _, err := TrustKeysFromWire([]TrustKey{good}); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(*TrustKey)) []TrustKey { c := good; f(&c); return []TrustKey{c} }
	for name, l := range map[string][]TrustKey{
		"kid of another key": mut(func(c *TrustKey) { c.KID = []byte{1, 2, 3, 4, 5, 6, 7, 8} }),
		"short kid":          mut(func(c *TrustKey) { c.KID = c.KID[:4] }),
		"bad role":           mut(func(c *TrustKey) { c.Role = "admin" }),
		"bad alg":            mut(func(c *TrustKey) { c.Alg = 99 }),
		"short key":          mut(func(c *TrustKey) { c.Public = c.Public[:5] }),
		"no district":        mut(func(c *TrustKey) { c.District = "" }),
		"negative time":      mut(func(c *TrustKey) { c.Revoked = -1 }),
		"huge cert":          mut(func(c *TrustKey) { c.Cert = make([]byte, maxCertLen+1) }),
	} {
		if _, err := TrustKeysFromWire(l); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
