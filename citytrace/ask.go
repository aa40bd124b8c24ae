package citytrace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/pass"
)

// MaxDistricts bounds the districts one trace asks.
const MaxDistricts = 64

// Ask is what the city asks: one person's city subject(s), a range and a
// window, on behalf of Asker.
type Ask struct {
	Asker    string
	Subjects []pass.Subject
	From, To time.Time
	Window   time.Duration
}

// Result is the merged answer of every district asked.
type Result struct {
	ID       string       // the request's id, in every audit record
	Checks   []CityCheck  // every district's checks, oldest first
	Contacts []CityPerson // one per contact subject, most overlaps first
	Answered []string     // districts that answered, sorted
	// Missing names every district that did not answer, and why: a
	// result is never silently short of a district.
	Missing   []Missing
	Truncated bool // a district had more than it sent
}

// CityCheck is one check of the person in one district.
type CityCheck struct {
	District string
	Check
}

// CityPerson is one contact over every district.
type CityPerson struct {
	Subject     string // hex
	Overlaps    int    // how many of the person's checks they were near
	Districts   []string
	First, Last time.Time
}

// Missing is a district that did not answer.
type Missing struct {
	District, Why string
}

// Complete tells whether every district asked answered.
func (r *Result) Complete() bool { return len(r.Missing) == 0 }

// AskDistricts sends a to every district at once and waits for each at
// most timeout (and no longer than ctx). A district that does not answer
// in time, has no responder on the link, refuses, or answers something
// malformed is in Missing with why; the others' checks are merged.
func AskDistricts(ctx context.Context, nc *nats.Conn, districts []string, a Ask, timeout time.Duration) (*Result, error) {
	if len(districts) == 0 || len(districts) > MaxDistricts {
		return nil, fmt.Errorf("city trace: %d districts, want 1 to %d", len(districts), MaxDistricts)
	}
	seen := make(map[string]bool, len(districts))
	for _, d := range districts {
		if err := pass.CheckIdent("district", d); err != nil {
			return nil, fmt.Errorf("city trace: %w", err)
		}
		if seen[d] {
			return nil, fmt.Errorf("city trace: district %s named twice", d)
		}
		seen[d] = true
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	req := Request{V: Version, ID: hex.EncodeToString(id), Asker: a.Asker, FromMS: a.From.UnixMilli(), ToMS: a.To.UnixMilli(),
		WindowMS: a.Window.Milliseconds()}
	for _, s := range a.Subjects {
		req.Subjects = append(req.Subjects, hex.EncodeToString(s[:]))
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, err
	}
	// What the districts will refuse is refused here first.
	if _, err := ParseRequest(body); err != nil {
		return nil, fmt.Errorf("city trace: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers := make([]*Answer, len(districts))
	whys := make([]string, len(districts))
	var wg sync.WaitGroup
	for i, d := range districts {
		wg.Go(func() {
			answers[i], whys[i] = askOne(ctx, nc, d, req.ID, body)
		})
	}
	wg.Wait()
	return merge(req.ID, districts, answers, whys), nil
}

// askOne asks one district; an answer, or why there is none.
func askOne(ctx context.Context, nc *nats.Conn, district, id string, body []byte) (*Answer, string) {
	m, err := nc.RequestWithContext(ctx, Subject(district), body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, "no hub of this district is connected"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, "no answer in time"
	case err != nil:
		return nil, "not asked: " + err.Error()
	}
	a, err := ParseAnswer(m.Data, district, id)
	if err != nil {
		if a2 := (&Answer{}); json.Unmarshal(m.Data, a2) == nil && a2.Error != "" && len(a2.Error) < 200 {
			return nil, "refused: " + a2.Error
		}
		return nil, "malformed answer"
	}
	if a.Error != "" {
		return nil, "refused: " + a.Error
	}
	return a, ""
}

// merge joins the districts' answers.
func merge(id string, districts []string, answers []*Answer, whys []string) *Result {
	r := &Result{ID: id}
	idx := map[string]int{}
	for i, a := range answers {
		d := districts[i]
		if a == nil {
			r.Missing = append(r.Missing, Missing{District: d, Why: whys[i]})
			continue
		}
		r.Answered = append(r.Answered, d)
		r.Truncated = r.Truncated || a.Truncated
		for _, c := range a.Checks {
			r.Checks = append(r.Checks, CityCheck{District: d, Check: c})
			near := map[string]bool{}
			for _, ct := range c.Contacts {
				at := time.UnixMilli(ct.AtMS)
				j, ok := idx[ct.Subject]
				if !ok {
					j = len(r.Contacts)
					idx[ct.Subject] = j
					r.Contacts = append(r.Contacts, CityPerson{Subject: ct.Subject, First: at, Last: at})
				}
				p := &r.Contacts[j]
				if !near[ct.Subject] {
					near[ct.Subject] = true
					p.Overlaps++
				}
				if !slices.Contains(p.Districts, d) {
					p.Districts = append(p.Districts, d)
				}
				if at.Before(p.First) {
					p.First = at
				}
				if at.After(p.Last) {
					p.Last = at
				}
			}
		}
	}
	sort.Strings(r.Answered)
	sort.Slice(r.Missing, func(i, j int) bool { return r.Missing[i].District < r.Missing[j].District })
	sort.SliceStable(r.Checks, func(i, j int) bool {
		if r.Checks[i].AtMS != r.Checks[j].AtMS {
			return r.Checks[i].AtMS < r.Checks[j].AtMS
		}
		return r.Checks[i].District < r.Checks[j].District
	})
	for i := range r.Contacts {
		sort.Strings(r.Contacts[i].Districts)
	}
	sort.SliceStable(r.Contacts, func(i, j int) bool {
		a, b := r.Contacts[i], r.Contacts[j]
		if a.Overlaps != b.Overlaps {
			return a.Overlaps > b.Overlaps
		}
		if !a.First.Equal(b.First) {
			return a.First.Before(b.First)
		}
		return a.Subject < b.Subject
	})
	return r
}
