package citylink_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
	"passgate/district"
	"passgate/internal/natstest"
	"passgate/store"

	_ "modernc.org/sqlite"
)

// hub is a district hub's store with its city link running.
type hub struct {
	id   string
	dir  string
	db   *store.DB
	stop context.CancelFunc
	done chan struct{}
	link *citylink.Link
	// answer, if set, runs on the link's connection (Config.Answer).
	answer func(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error
}

func newStore(t *testing.T) (*store.DB, string, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := district.Setup(context.Background(), db, district.SetupOptions{Name: "hub", AdminPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return db, dir, res.District.ID
}

func (h *hub) start(t *testing.T, c *natstest.Cluster) {
	t.Helper()
	l, err := citylink.New(citylink.Config{URLs: c.URLs(), SeedFile: c.SeedFile(h.id), Answer: h.answer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.link, h.stop, h.done = l, cancel, make(chan struct{})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() { defer close(h.done); l.Run(ctx, h.db, log) }()
}

func (h *hub) halt() {
	h.stop()
	<-h.done
}

// twoHubs sets up two districts' stores, the cluster with a user for
// each, and starts both links.
func twoHubs(t *testing.T) (*natstest.Cluster, *hub, *hub) {
	db1, dir1, id1 := newStore(t)
	db2, dir2, id2 := newStore(t)
	t.Cleanup(func() { db1.Close(); db2.Close() })
	c := natstest.Start(t, id1, id2)
	h1, h2 := &hub{id: id1, dir: dir1, db: db1}, &hub{id: id2, dir: dir2, db: db2}
	h1.start(t, c)
	h2.start(t, c)
	t.Cleanup(func() { h1.halt(); h2.halt() })
	return c, h1, h2
}

// refusals are the details of the city refusals audited in db.
func refusals(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityMessageRefused {
			out = append(out, r.Subject+" "+string(r.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func revokePass(t *testing.T, db *store.DB) []byte {
	t.Helper()
	id := make([]byte, 12)
	rand.Read(id)
	if err := db.CreateRevocation(context.Background(), &store.Revocation{Kind: store.RevokePass, Target: id, Reason: "red code"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// countTarget counts the revocations of target held in db, and those
// taken from the city.
func countTarget(t *testing.T, db *store.DB, target []byte) int {
	t.Helper()
	list, err := db.RevocationsSince(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range list {
		if bytes.Equal(r.Target, target) {
			n++
		}
	}
	return n
}

func waitCount(t *testing.T, db *store.DB, target []byte, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		n := countTarget(t, db, target)
		if n == want {
			return time.Since(start)
		}
		if n > want || time.Since(start) > limit {
			t.Fatalf("revocation of %x held %d times after %v, want %d", target, n, time.Since(start), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A revocation made at one hub is published once and reaches the other
// hub once; neither hub stores its own back, and neither publishes what
// it took from the city.
func TestLink_Exchange(t *testing.T) {
	c, h1, h2 := twoHubs(t)
	a := revokePass(t, h1.db)
	b := revokePass(t, h2.db)
	waitCount(t, h2.db, a, 1, 20*time.Second)
	waitCount(t, h1.db, b, 1, 20*time.Second)
	time.Sleep(time.Second) // a copy would arrive by now
	if countTarget(t, h1.db, a) != 1 || countTarget(t, h2.db, b) != 1 || countTarget(t, h2.db, a) != 1 {
		t.Fatal("a revocation was stored twice")
	}
	info, err := c.Stream().Info(context.Background())
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream: %v %+v, want 2 messages", err, info.State)
	}
	for _, h := range []*hub{h1, h2} {
		st, err := h.db.CityLinkState(context.Background())
		if err != nil || st.Pending != 0 || st.Taken != 1 {
			t.Fatalf("%s: %v %+v", h.id, err, st)
		}
	}
}

// A hub that crashed after the stream acknowledged but before storing
// its mark publishes again; the stream drops the copy and no hub holds
// it twice.
func TestLink_RepublishIsDeduplicated(t *testing.T) {
	c, h1, h2 := twoHubs(t)
	a := revokePass(t, h1.db)
	waitCount(t, h2.db, a, 1, 20*time.Second)
	h1.halt()
	// The mark as it was before the acknowledgement: every revocation
	// of the district is pending again.
	h1.db.Close()
	raw, err := sql.Open("sqlite", filepath.Join(h1.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE city_link SET published_seq = 0`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if h1.db, err = store.Open(context.Background(), h1.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h1.db.Close() })
	h1.start(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := h1.db.CityLinkState(context.Background())
		if st != nil && st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not republished")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := countTarget(t, h2.db, a); n != 1 {
		t.Fatalf("held %d times at the other hub", n)
	}
	info, _ := c.Stream().Info(context.Background())
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

// Hostile messages on a district's own subject are refused, audited,
// and never stored: a record claiming another district, bad bytes, a
// wrong shape, an oversized one, a key revocation of another district's
// key or of a root.
func TestLink_HostileMessagesRefused(t *testing.T) {
	c, h1, h2 := twoHubs(t)
	ctx := context.Background()
	nc := c.Connect(c.SeedFile(h2.id), nats.CustomInboxPrefix(citylink.InboxPrefix(h2.id)))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := h1.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	if err != nil || len(roots) == 0 {
		t.Fatal(err)
	}
	issuers, err := h1.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleIssuer})
	if err != nil || len(issuers) == 0 {
		t.Fatal(err)
	}
	pid := make([]byte, 12)
	rand.Read(pid)
	claim1, _ := citylink.Encode(h1.id, &store.Revocation{Seq: 1, Kind: store.RevokePass, Target: pid, Reason: "x", At: time.Now()})
	ownIssuer, _ := citylink.Encode(h2.id, &store.Revocation{Seq: 2, Kind: store.RevokeIssuer, Target: issuers[0].KID[:], At: time.Now()})
	ownRoot, _ := citylink.Encode(h2.id, &store.Revocation{Seq: 3, Kind: store.RevokeIssuer, Target: roots[0].KID[:], At: time.Now()})
	for _, b := range [][]byte{claim1, []byte("\xff\xfe not json"), []byte(`{"v":1}`), bytes.Repeat([]byte(" "), citylink.MaxMessage+1), ownIssuer, ownRoot} {
		if _, err := js.Publish(ctx, citylink.Subject(h2.id), b); err != nil && len(b) <= citylink.MaxMessage {
			t.Fatalf("publish: %v", err)
		}
	}
	// The stream refuses the oversized one itself; five reach hub 1.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n := len(refusals(t, h1.db)); n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusals audited: %q, want 5", refusals(t, h1.db))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if countTarget(t, h1.db, pid) != 0 || countTarget(t, h1.db, issuers[0].KID[:]) != 0 || countTarget(t, h1.db, roots[0].KID[:]) != 0 {
		t.Fatal("a hostile record was stored")
	}
	whys := strings.Join(refusals(t, h1.db), "\n")
	for _, want := range []string{"a record of district", "s subject", "parse city revocation", "malformed district", "held here as district", "roots are rotated", h1.id} {
		if !strings.Contains(whys, want) {
			t.Errorf("no refusal saying %q in:\n%s", want, whys)
		}
	}
	if st := h1.link.Status(); st.Refused != 5 {
		t.Fatalf("status: %+v", st)
	}
}

// What answers the city's traces runs on the link's connection, as the
// district's hub user, while the link runs: started again after it
// failed, and gone when the link stops.
func TestLink_AnswersOnItsConnection(t *testing.T) {
	db, dir, id := newStore(t)
	t.Cleanup(func() { db.Close() })
	c := natstest.Start(t, id)
	calls := 0
	h := &hub{id: id, dir: dir, db: db, answer: func(ctx context.Context, nc *nats.Conn, _ *store.DB, district string) error {
		if calls++; calls == 1 {
			return errors.New("first try fails")
		}
		sub, err := nc.Subscribe(citylink.TraceSubject(district), func(m *nats.Msg) { _ = m.Respond([]byte(district)) })
		if err != nil {
			return err
		}
		defer sub.Unsubscribe() //nolint:errcheck // closed with the connection
		<-ctx.Done()
		return nil
	}}
	h.start(t, c)
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := console.Request(citylink.TraceSubject(id), nil, time.Second)
		if err == nil {
			if string(m.Data) != id {
				t.Fatalf("answered %q, want %q", m.Data, id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.halt()
	if calls != 2 {
		t.Fatalf("answer ran %d times, want 2", calls)
	}
	c.WaitNoResponders(console, citylink.TraceSubject(id))
}

// A batch the cluster delivered to a fetch that never completed (the
// node or connection that carried it was lost) is delivered again within
// seconds, not after the half-minute an older passgate's consumer waited:
// a red code still reaches the district well inside the city's 10 s.
func TestLink_LostDeliveryComesAgainSoon(t *testing.T) {
	db1, dir1, id1 := newStore(t)
	db2, dir2, id2 := newStore(t)
	t.Cleanup(func() { db1.Close(); db2.Close() })
	c := natstest.Start(t, id1, id2)
	h1, h2 := &hub{id: id1, dir: dir1, db: db1}, &hub{id: id2, dir: dir2, db: db2}
	h1.start(t, c)
	t.Cleanup(h1.halt)

	// Hub 2's consumer as an older passgate made it.
	js, err := jetstream.New(c.Connect(c.AdminSeedFile()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cons, err := js.CreateOrUpdateConsumer(ctx, citylink.StreamName, jetstream.ConsumerConfig{
		Durable: citylink.ConsumerName(id2), FilterSubject: citylink.AllRevocations,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	target := revokePass(t, db1)
	// Delivered, never acknowledged: the answer to this fetch is lost.
	var got int
	deadline := time.Now().Add(20 * time.Second)
	for got == 0 && time.Now().Before(deadline) {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	if got != 1 {
		t.Fatal("hub 1's revocation never reached the stream")
	}

	h2.start(t, c)
	t.Cleanup(h2.halt)
	took := waitCount(t, db2, target, 1, 30*time.Second)
	if took > 10*time.Second {
		t.Fatalf("the lost delivery came again after %v", took)
	}
	info, err := cons.Info(ctx)
	if err != nil || info.Config.AckWait >= 10*time.Second {
		t.Fatalf("consumer after the link took it over: %v %+v", err, info.Config)
	}
}
