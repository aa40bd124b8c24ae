package citytrace

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/cityask"
	"passgate/pass"
)

// MaxDistricts bounds the districts one trace asks.
const MaxDistricts = cityask.MaxDistricts

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

// Missing is a district that did not answer, and why.
type Missing = cityask.Missing

// Complete tells whether every district asked answered.
func (r *Result) Complete() bool { return len(r.Missing) == 0 }

// AskDistricts sends a to every district at once and waits for each at
// most timeout (and no longer than ctx). A district that does not answer
// in time, has no responder on the link, refuses, or answers something
// malformed is in Missing with why; the others' checks are merged.
func AskDistricts(ctx context.Context, nc *nats.Conn, districts []string, a Ask, timeout time.Duration) (*Result, error) {
	if err := cityask.CheckDistricts(districts); err != nil {
		return nil, fmt.Errorf("city trace: %w", err)
	}
	id, err := cityask.NewID()
	if err != nil {
		return nil, fmt.Errorf("city trace: %w", err)
	}
	req := Request{V: Version, ID: id, Asker: a.Asker, FromMS: a.From.UnixMilli(), ToMS: a.To.UnixMilli(),
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
	answers, missing := cityask.Every(ctx, nc, districts, Subject, body, timeout, func(d string, b []byte) (*Answer, error) {
		return ParseAnswer(b, d, req.ID)
	})
	return merge(req.ID, districts, answers, missing), nil
}

// merge joins the districts' answers.
func merge(id string, districts []string, answers []*Answer, missing []Missing) *Result {
	r := &Result{ID: id, Missing: missing}
	idx := map[string]int{}
	for i, a := range answers {
		d := districts[i]
		if a == nil {
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
