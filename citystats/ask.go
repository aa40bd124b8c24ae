package citystats

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/cityask"
)

// Result is every district's figures at one time.
type Result struct {
	ID string    // the request's id, in every district's audit record
	At time.Time // when the console asked
	// Answers are the districts that answered, by district.
	Answers []*Answer
	// Missing names every district that did not answer, and why.
	Missing []cityask.Missing
}

// AskDistricts asks every district for its figures at once, on behalf
// of asker, and waits for each at most timeout (and no longer than ctx).
func AskDistricts(ctx context.Context, nc *nats.Conn, districts []string, asker string, timeout time.Duration) (*Result, error) {
	if err := cityask.CheckDistricts(districts); err != nil {
		return nil, fmt.Errorf("city dashboard: %w", err)
	}
	id, err := cityask.NewID()
	if err != nil {
		return nil, fmt.Errorf("city dashboard: %w", err)
	}
	body, err := json.Marshal(&Request{V: Version, ID: id, Asker: asker})
	if err != nil {
		return nil, err
	}
	// What the districts will refuse is refused here first.
	if _, err := ParseRequest(body); err != nil {
		return nil, fmt.Errorf("city dashboard: %w", err)
	}
	res := &Result{ID: id, At: time.Now()}
	answers, missing := cityask.Every(ctx, nc, districts, Subject, body, timeout, func(d string, b []byte) (*Answer, error) {
		return ParseAnswer(b, d, id)
	})
	res.Missing = missing
	for _, a := range answers {
		if a != nil {
			res.Answers = append(res.Answers, a)
		}
	}
	sort.Slice(res.Answers, func(i, j int) bool { return res.Answers[i].District < res.Answers[j].District })
	return res, nil
}
