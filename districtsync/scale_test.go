package districtsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
	"passgate/tlsca"
)

// runningHub serves a second sync API over h's database, with Run going
// (long polls, batched contacts), on its own HTTPS address under the
// same CA; hubClient reaches it as an enrolled appliance.
func runningHub(t *testing.T, h *enrHub, pollWait, contactEvery time.Duration) (*Server, string) {
	t.Helper()
	srv := NewServer(ServerConfig{DB: h.db, HubCA: h.ca})
	srv.pollWait, srv.contactEvery = pollWait, contactEvery
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !srv.running.Load() {
		time.Sleep(time.Millisecond)
	}
	auth, err := tlsca.LoadOrCreate(h.dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveTLS(t, srv.Handler(), auth.TLSConfig(), h.ca)
}

// hubClient is app's client for the hub at url.
func hubClient(t *testing.T, app *store.DB, url string) *Client {
	t.Helper()
	info, err := app.SyncHubInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClientCA(url, info.HubCA, info.Token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// testTrustKey is an issuer key of district "d" made from seed.
func testTrustKey(t *testing.T, seed uint64) *store.Key {
	t.Helper()
	var b [32]byte
	binary.BigEndian.PutUint64(b[:], seed)
	k, err := pass.GenerateKey(pass.AlgEdDSA, bytes.NewReader(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	p := k.Public()
	return &store.Key{KID: p.KID, Role: store.RoleIssuer, Alg: p.Alg, Public: p.Raw, District: "d", NotBefore: time.UnixMilli(1000)}
}

func TestTrustDelta_AddChangeRemove(t *testing.T) {
	a, b, c, d := testTrustKey(t, 1), testTrustKey(t, 2), testTrustKey(t, 3), testTrustKey(t, 4)
	c2 := *c
	c2.RevokedAt = time.UnixMilli(5000)
	var cache trustCache
	cache.install(newTrustSnapshot([]*store.Key{a, b, c}, 1))
	v1 := cache.cur.hash
	next := []*store.Key{a, &c2, d}
	cache.install(newTrustSnapshot(next, 2))
	delta, ok := cache.delta(cache.cur, v1)
	if !ok {
		t.Fatal("no delta from the list before")
	}
	if len(delta.Add) != 2 || len(delta.Remove) != 1 || !bytes.Equal(delta.Remove[0], b.KID[:]) || delta.Version != 2 {
		t.Fatalf("delta: %d added, removed %x, version %d", len(delta.Add), delta.Remove, delta.Version)
	}
	list, err := ApplyTrustDelta([]*store.Key{a, b, c}, v1, delta)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(list.Hash, TrustHash(next)) || len(list.Keys) != 3 {
		t.Fatalf("rebuilt list: %d keys, hash %x", len(list.Keys), list.Hash)
	}
	// The same delta again comes from the cache, not recomputed.
	if again, _ := cache.delta(cache.cur, v1); again != delta {
		t.Fatal("delta recomputed")
	}
	// A list the hub never had, or one older than its history: no delta.
	if _, ok := cache.delta(cache.cur, bytes.Repeat([]byte{7}, sha256.Size)); ok {
		t.Fatal("delta from an unknown list")
	}
	for i := range trustHistory {
		cache.install(newTrustSnapshot([]*store.Key{a, testTrustKey(t, uint64(100+i))}, int64(3+i)))
	}
	if _, ok := cache.delta(cache.cur, v1); ok {
		t.Fatal("delta from a list older than the history")
	}
}

func TestApplyTrustDelta_Refusals(t *testing.T) {
	a, b, evil := testTrustKey(t, 1), testTrustKey(t, 2), testTrustKey(t, 66)
	base := []*store.Key{a}
	good := &TrustDelta{Base: TrustHash(base), Hash: TrustHash([]*store.Key{a, b}), Add: []TrustKey{TrustKeyToWire(b)}}
	if _, err := ApplyTrustDelta(base, good.Base, good); err != nil {
		t.Fatalf("good delta: %v", err)
	}
	swapped := TrustKeyToWire(evil)
	swapped.KID = bytes.Clone(b.KID[:])
	many := make([][]byte, maxTrustKeys+1)
	cases := map[string]*TrustDelta{
		"key injected":             {Base: good.Base, Hash: good.Hash, Add: []TrustKey{TrustKeyToWire(b), TrustKeyToWire(evil)}},
		"key swapped under an ID":  {Base: good.Base, Hash: good.Hash, Add: []TrustKey{swapped}},
		"key removed":              {Base: good.Base, Hash: good.Hash, Add: []TrustKey{TrustKeyToWire(b)}, Remove: [][]byte{a.KID[:]}},
		"other base":               {Base: bytes.Repeat([]byte{1}, 32), Hash: good.Hash, Add: good.Add},
		"hash of the injected one": {Base: good.Base, Hash: TrustHash([]*store.Key{a, evil}), Add: []TrustKey{TrustKeyToWire(b)}},
		"too many removals":        {Base: good.Base, Hash: good.Hash, Remove: many},
	}
	for name, d := range cases {
		if _, err := ApplyTrustDelta(base, good.Base, d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An answer whose delta was not turned into a list is refused whole.
	if _, err := FeedFromWire(&PullResponse{TrustDelta: good}); err == nil {
		t.Fatal("feed with an unresolved delta accepted")
	}
}

func FuzzApplyTrustDelta(f *testing.F) {
	f.Add([]byte(`{"base":"","hash":"","add":[{"kid":"AQ==","role":"issuer","alg":-8,"public":"","district":"d"}],"remove":["AQ=="]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d TrustDelta
		if readBody(bytes.NewReader(body), "", &d) != nil {
			return
		}
		held := []*store.Key{testTrustKey(t, 1)}
		list, err := ApplyTrustDelta(held, d.Base, &d)
		if err == nil {
			keys, err := TrustKeysFromWire(list.Keys)
			if err != nil || !bytes.Equal(TrustHash(keys), d.Hash) {
				t.Fatalf("accepted a list that does not check: %v", err)
			}
		}
	})
}

func TestPull_TrustDeltaOverTheWire(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	srv, url := runningHub(t, h, 200*time.Millisecond, time.Hour)
	app := enrolled(t, h, "gate-d", false)
	c := hubClient(t, app, url)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	// Three issuing appliances enrolled: each is a new trust version.
	for _, name := range []string{"desk-1", "desk-2", "desk-3"} {
		enrolled(t, h, name, true)
	}
	st, _ := app.FeedState(ctx)
	var resp PullResponse
	if err := c.Call(ctx, PathPull, &PullRequest{RevocationsAfter: 1 << 40, TrustHash: st.TrustHash, PolicyVersion: 1 << 50, Deltas: true}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Trust != nil || resp.TrustDelta == nil || len(resp.TrustDelta.Add) != 3 {
		t.Fatalf("answer: whole list %v, delta %+v", resp.Trust != nil, resp.TrustDelta)
	}
	res, err := PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := h.db.TrustKeys(ctx)
	st, _ = app.FeedState(ctx)
	if res.KeysAdded != 3 || !bytes.Equal(st.TrustHash, TrustHash(hub)) {
		t.Fatalf("after the delta: %+v, hash %x want %x", res.FeedResult, st.TrustHash, TrustHash(hub))
	}
	// An appliance that sends only its hash (no deltas) gets the whole
	// list; one from another hub database too.
	for name, req := range map[string]*PullRequest{
		"old appliance": {TrustHash: resp.TrustDelta.Base},
		"unknown list":  {TrustHash: bytes.Repeat([]byte{9}, 32), Deltas: true},
	} {
		var r PullResponse
		if err := c.Call(ctx, PathPull, req, &r); err != nil {
			t.Fatal(err)
		}
		if r.Trust == nil || r.TrustDelta != nil || len(r.Trust.Keys) != len(hub) {
			t.Fatalf("%s: whole list %v, delta %v", name, r.Trust != nil, r.TrustDelta != nil)
		}
	}
	// Idle pulls do not rebuild the list.
	before := srv.trust.rebuilt
	for range 5 {
		if _, err := PullOnce(ctx, app, c); err != nil {
			t.Fatal(err)
		}
	}
	if srv.trust.rebuilt != before {
		t.Fatalf("idle pulls rebuilt the list %d times", srv.trust.rebuilt-before)
	}
}

func TestPullWait_ReturnsOnChangeAndAtDeadline(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	const wait = 1500 * time.Millisecond
	_, url := runningHub(t, h, wait, time.Hour)
	app := enrolled(t, h, "gate-w", false)
	c := hubClient(t, app, url)
	if _, err := PullOnce(ctx, app, c); err != nil { // anything pending since enrolment
		t.Fatal(err)
	}
	// Nothing changes: the pull comes back empty at its deadline.
	start := time.Now()
	res, err := PullWait(ctx, app, c)
	if d := time.Since(start); err != nil || d < wait-100*time.Millisecond || d > wait+time.Second || res.Revocations != 0 {
		t.Fatalf("idle long poll: %v after %v, %+v", err, d, res)
	}
	// A revocation made while it waits ends it within about a second.
	type out struct {
		res *PullResult
		err error
		at  time.Time
	}
	done := make(chan out, 1)
	go func() {
		r, err := PullWait(ctx, app, c)
		done <- out{r, err, time.Now()}
	}()
	time.Sleep(wait / 3)
	pid := pass.ID{4, 2}
	revokedAt := time.Now()
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil || o.res.Revocations != 1 || o.at.Sub(revokedAt) > time.Second {
		t.Fatalf("long poll after a revocation: %v, %+v, %v after it", o.err, o.res, o.at.Sub(revokedAt))
	}
}

func TestContacts_BatchedAndFlushedAtStop(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	srv := NewServer(ServerConfig{DB: h.db})
	srv.contactEvery = time.Hour
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(rctx) }()
	for !srv.running.Load() {
		time.Sleep(time.Millisecond)
	}
	// Many appliances' pulls, each noted as the handler does.
	const n = 300
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n * 3 {
		srv.contacts.note(store.ApplianceContact{ID: int64(i%n + 1), At: time.Now(), Backlog: r.Int64N(10)})
	}
	if got := len(srv.contacts.pending); got != n {
		t.Fatalf("%d contacts pending, want one per appliance (%d)", got, n)
	}
	// One real appliance: its pulls write nothing until the batch.
	app := enrolled(t, h, "gate-c", false)
	auth, _ := tlsca.LoadOrCreate(h.dir, []string{"127.0.0.1"}, time.Now())
	c := hubClient(t, app, serveTLS(t, srv.Handler(), auth.TLSConfig(), h.ca))
	enrolledAt, err := h.db.ApplianceByName(ctx, "gate-c")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.db.ApplianceByName(ctx, "gate-c"); !a.LastContact.Equal(enrolledAt.LastContact) {
		t.Fatalf("contact written at the pull: %v, at enrolment %v", a.LastContact, enrolledAt.LastContact)
	}
	cancel()
	<-done
	if a, _ := h.db.ApplianceByName(ctx, "gate-c"); !a.LastContact.After(enrolledAt.LastContact) {
		t.Fatal("contact not written when the server stopped")
	}
	if len(srv.contacts.pending) != 0 {
		t.Fatal("contacts left pending")
	}
	// A few hundred appliances' contacts: one transaction.
	if n := srv.contacts.flushes.Load(); n != 1 {
		t.Fatalf("%d transactions for the contacts, want 1", n)
	}
}

// TestPull_DrainAnswersWaitingPulls: a shutting-down hub does not hold
// its long polls until they end.
func TestPull_DrainAnswersWaitingPulls(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	srv, url := runningHub(t, h, time.Minute, time.Hour)
	app := enrolled(t, h, "gate-x", false)
	c := hubClient(t, app, url)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); srv.Drain() }()
	start := time.Now()
	if _, err := PullWait(ctx, app, c); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("pull during drain: %v after %v", err, time.Since(start))
	}
}

func TestPull_RefusesMalformedPositions(t *testing.T) {
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-m", false)
	info, err := app.SyncHubInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	handler := NewServer(ServerConfig{DB: h.db}).Handler()
	for name, req := range map[string]map[string]any{
		"negative trust version":   {"trust_version": -1, "deltas": true},
		"negative revocation seq":  {"revocations_after": -5, "wait": true},
		"negative policy version":  {"policy_version": -1},
		"trust hash too long":      {"trust_hash": bytes.Repeat([]byte{1}, 33), "deltas": true},
		"trust version not number": {"trust_version": "x"},
	} {
		if w := doPlain(t, handler, PathPull, req, encodeToken(info.Token)); w.Code != 400 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
}

// TestPullWait_HistoryMovedAnswersAtOnce: a pull asked in another feed
// generation, or from beyond the hub's end, is answered at once, so the
// appliance reads the whole feed again instead of waiting for a change
// that its position would never show.
func TestPullWait_HistoryMovedAnswersAtOnce(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	const wait = 3 * time.Second
	_, url := runningHub(t, h, wait, time.Hour)
	app := enrolled(t, h, "gate-g", false)
	c := hubClient(t, app, url)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	st, err := app.FeedState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gen, end, err := h.db.FeedGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := PullRequest{RevocationsAfter: st.RevocationsSeq, TrustHash: st.TrustHash, PolicyVersion: st.PolicyVersion,
		Generation: st.Generation, Deltas: true, Wait: true}
	other := bytes.Clone(gen)
	other[0] ^= 0xff
	for _, tc := range []struct {
		name  string
		req   PullRequest
		waits bool
	}{
		{"current", at, true},
		{"other generation", func() PullRequest { r := at; r.Generation = other; return r }(), false},
		{"beyond the end", func() PullRequest { r := at; r.RevocationsAfter = end + 10; return r }(), false},
	} {
		start := time.Now()
		var resp PullResponse
		if err := c.Call(ctx, PathPull, &tc.req, &resp); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		d := time.Since(start)
		if waited := d >= wait-200*time.Millisecond; waited != tc.waits {
			t.Errorf("%s: answered after %v, want waiting %v", tc.name, d, tc.waits)
		}
		if !bytes.Equal(resp.Generation, gen) || resp.RevocationsEnd != end {
			t.Errorf("%s: generation %x end %d, hub's %x %d", tc.name, resp.Generation, resp.RevocationsEnd, gen, end)
		}
	}
}

// TestSyncLoop_LongPollOnlyWithinStaleAfter: a pull waits at the hub only
// where the policy's "stale after" leaves room for a whole wait, so the
// age the gate shows never crosses it while the hub is reachable.
func TestSyncLoop_LongPollOnlyWithinStaleAfter(t *testing.T) {
	ctx := context.Background()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-s", false)
	c := clientOf(t, app)
	l := &syncLoop{s: &Syncer{db: app}}
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	if !l.longPoll(ctx) {
		t.Fatal("no long poll under the default stale-after")
	}
	pol, err := h.db.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol.StaleAfter = 30 * time.Second
	time.Sleep(2 * time.Millisecond)
	if err := h.db.ChangePolicy(ctx, pol, "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	if l.longPoll(ctx) {
		t.Fatal("long poll under a stale-after of 30 s")
	}
}
