package citystats

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/store"
)

// AuditEvery is how often at most a hub records that it answered one
// city officer's dashboard: the console's page asks again every 30
// seconds for as long as it is open, and a record per answer would put
// thousands a day per officer into every district's audit trail, each
// saying the same (aggregate counts, no person). The first answer to an
// officer is recorded at once; later ones within AuditEvery are counted
// and the next record (or the hub's stop) carries their number, so the
// trail still says who watched and how often.
const AuditEvery = 10 * time.Minute

// maxAskers bounds the officers whose answers are counted between
// records; beyond it every answer is recorded, so memory stays bounded
// and no answer goes unrecorded.
const maxAskers = 256

// LagFunc tells the hub's city link lag: the messages on the city stream
// it has not applied yet, and whether that is known now (false while the
// link is down).
type LagFunc func() (int64, bool)

// Serve answers the city console's dashboard requests for district on
// Subject(district) from db, the hub's data, until ctx ends; lag, if not
// nil, adds the city link's lag. Who may ask is the engine's to enforce:
// only the city console's user may publish on citystats.*. Answers are
// audited per officer (AuditEvery), every refused request with why. It
// returns at once when it cannot subscribe.
func Serve(ctx context.Context, nc *nats.Conn, db *store.DB, district string, lag LagFunc) error {
	d, err := db.District(ctx)
	if err != nil {
		return fmt.Errorf("city dashboard: %w", err)
	}
	if d.ID != district {
		// A wiring mistake must not show one district's figures under
		// another's name.
		return fmt.Errorf("city dashboard: this hub is district %s, not %s", d.ID, district)
	}
	h := newHub(db, district, lag)
	sub, err := nc.Subscribe(Subject(district), func(m *nats.Msg) {
		if m.Reply == "" {
			h.refuse(ctx, "request without a reply subject", len(m.Data))
			return
		}
		b, err := json.Marshal(h.answer(ctx, m.Data))
		if err != nil {
			return
		}
		_ = m.Respond(b) // a requester gone away names this district as missing
	})
	if err != nil {
		return fmt.Errorf("city dashboard: subscribe: %w", err)
	}
	defer h.flush(context.WithoutCancel(ctx))
	defer sub.Unsubscribe() //nolint:errcheck // the connection may be closed already
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("city dashboard: subscribe: %w", err)
	}
	<-ctx.Done()
	return nil
}

// hub is one district hub answering dashboard requests.
type hub struct {
	db       *store.DB
	district string
	lag      LagFunc

	mu     sync.Mutex
	askers map[string]*asker
}

// asker is what a hub keeps of one officer between audit records.
type asker struct {
	recorded time.Time // the last record
	since    int       // answers since it, not recorded
	last     string    // the last request's id
}

func newHub(db *store.DB, district string, lag LagFunc) *hub {
	return &hub{db: db, district: district, lag: lag, askers: map[string]*asker{}}
}

// refuse audits a refused request.
func (h *hub) refuse(ctx context.Context, why string, n int) error {
	return h.db.Audit(ctx, &store.AuditRecord{Actor: "city", Action: store.AuditCityFiguresRefused,
		Detail: store.AuditDetail(map[string]any{"why": why, "bytes": n})})
}

// answer is the district's answer to one request's bytes.
func (h *hub) answer(ctx context.Context, b []byte) *Answer {
	r, err := ParseRequest(b)
	if err != nil {
		if h.refuse(ctx, err.Error(), len(b)) != nil {
			return &Answer{V: Version, District: h.district, Error: "the district could not record the request"}
		}
		return &Answer{V: Version, District: h.district, Error: "malformed request"}
	}
	fail := &Answer{V: Version, ID: r.ID, District: h.district, Error: "the district could not answer"}
	a, err := h.figures(ctx, r.ID)
	if err != nil {
		return fail
	}
	if err := h.record(ctx, r, a.AtMS); err != nil {
		return fail
	}
	return a
}

// figures reads the hub's figures now.
func (h *hub) figures(ctx context.Context, id string) (*Answer, error) {
	loc, err := h.db.Location(ctx)
	if err != nil {
		return nil, err
	}
	now := h.db.Now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	f, err := h.db.HubFigures(ctx, now, day)
	if err != nil {
		return nil, err
	}
	a := &Answer{V: Version, ID: id, District: h.district, AtMS: now.UnixMilli(), CountedToMS: f.CountedTo.UnixMilli(),
		Scans5m: f.Scans5m, ScansHour: f.ScansHour, ScansToday: f.AllowToday + f.DenyToday, Allows: f.AllowToday, Denies: f.DenyToday,
		Appliances: f.Appliances, AppliancesSeen: f.Seen, Revocations: f.Revocations}
	if n := len(f.ListAges); n > 0 {
		oldest, median := int64(f.ListAges[0]/time.Second), int64(f.ListAges[n/2]/time.Second)
		a.OldestListS, a.MedianListS = &oldest, &median
	}
	if h.lag != nil {
		if lag, ok := h.lag(); ok {
			a.CityLag = &lag
		}
	}
	return a, nil
}

// record audits an answer to r at atMS: at once for an officer not
// recorded within AuditEvery, else counted for the next record.
func (h *hub) record(ctx context.Context, r *Request, atMS int64) error {
	at := time.UnixMilli(atMS)
	h.mu.Lock()
	k := h.askers[r.Asker]
	if k != nil && at.Sub(k.recorded) < AuditEvery && at.Sub(k.recorded) >= 0 {
		k.since++
		k.last = r.ID
		h.mu.Unlock()
		return nil
	}
	earlier := 0
	if k != nil {
		earlier = k.since
	}
	h.mu.Unlock()
	detail := map[string]any{"request": r.ID, "answers": earlier + 1, "every_minutes": int(AuditEvery / time.Minute)}
	if err := h.db.Audit(ctx, &store.AuditRecord{Actor: store.Actor("city:" + r.Asker), Action: store.AuditCityFiguresAnswered,
		Detail: store.AuditDetail(detail)}); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch k := h.askers[r.Asker]; {
	case k != nil:
		k.recorded, k.since = at, k.since-earlier
	case len(h.askers) < maxAskers:
		h.askers[r.Asker] = &asker{recorded: at}
	}
	return nil
}

// flush records the answers not recorded yet, when the hub stops
// answering.
func (h *hub) flush(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, k := range h.askers {
		if k.since == 0 {
			continue
		}
		_ = h.db.Audit(ctx, &store.AuditRecord{Actor: store.Actor("city:" + name), Action: store.AuditCityFiguresAnswered,
			Detail: store.AuditDetail(map[string]any{"request": k.last, "answers": k.since, "every_minutes": int(AuditEvery / time.Minute)})})
		k.since = 0
	}
}
