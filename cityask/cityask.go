// Package cityask is the city console's side of asking every district
// hub at once over NATS request-reply, shared by the city trace and the
// city dashboard: one deadline for all, each district that did not answer
// named with why, and the strict reading both ends apply to the JSON
// they are sent.
package cityask

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/pass"
)

// MaxDistricts bounds the districts one request asks.
const MaxDistricts = 64

// MaxRefusal bounds the refusal a district's answer may carry for the
// console to show.
const MaxRefusal = 200

var (
	idPattern    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	askerPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,64}$`)
)

// ValidID tells whether id is a request id NewID makes: 32 lower-case
// hex digits, safe in an audit record.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// ValidAsker tells whether asker can name a city officer in a district's
// audit trail: 1 to 64 letters, digits and ._:@- (no space, no quote, no
// line break to forge a record with).
func ValidAsker(asker string) bool { return askerPattern.MatchString(asker) }

// NewID is a fresh request id, naming one request in the console's and
// every district's audit trail.
func NewID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("request id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// DecodeStrict decodes exactly one JSON value of at most limit bytes
// into v, refusing unknown fields and trailing data.
func DecodeStrict(b []byte, limit int, v any) error {
	if len(b) > limit {
		return fmt.Errorf("%d bytes, at most %d", len(b), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the message")
	}
	return nil
}

// CheckDistricts checks the list of districts a request goes to: 1 to
// MaxDistricts valid district ids, none twice.
func CheckDistricts(districts []string) error {
	if len(districts) == 0 || len(districts) > MaxDistricts {
		return fmt.Errorf("%d districts, want 1 to %d", len(districts), MaxDistricts)
	}
	seen := make(map[string]bool, len(districts))
	for _, d := range districts {
		if err := pass.CheckIdent("district", d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("district %s named twice", d)
		}
		seen[d] = true
	}
	return nil
}

// Missing is a district that did not answer, and why.
type Missing struct {
	District, Why string
}

// Answer is what a district's parsed answer tells the fan-out: the
// refusal it carries, empty when it answered.
type Answer interface {
	Refusal() string
}

// Every sends body to every district on subject(district) at once and
// waits for each at most timeout (and no longer than ctx). parse reads a
// district's answer (bounded and strict); its refusal, if any, makes the
// district missing. answers[i] is districts[i]'s, the zero value when it
// is missing; missing is sorted by district. A district that does not
// answer in time, has no responder, refuses or answers something
// malformed is in missing with why: never silently absent.
func Every[A Answer](ctx context.Context, nc *nats.Conn, districts []string, subject func(string) string, body []byte,
	timeout time.Duration, parse func(district string, b []byte) (A, error)) (answers []A, missing []Missing) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers = make([]A, len(districts))
	whys := make([]string, len(districts))
	var wg sync.WaitGroup
	for i, d := range districts {
		wg.Go(func() {
			answers[i], whys[i] = one(ctx, nc, subject(d), d, body, parse)
		})
	}
	wg.Wait()
	for i, w := range whys {
		if w != "" {
			missing = append(missing, Missing{District: districts[i], Why: w})
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].District < missing[j].District })
	return answers, missing
}

// one asks one district; its answer, or why there is none.
func one[A Answer](ctx context.Context, nc *nats.Conn, subject, district string, body []byte,
	parse func(string, []byte) (A, error)) (A, string) {
	var zero A
	m, err := nc.RequestWithContext(ctx, subject, body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return zero, "no hub of this district is connected"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return zero, "no answer in time"
	case err != nil:
		return zero, "not asked: " + err.Error()
	}
	a, err := parse(district, m.Data)
	if err != nil {
		// A refusal answers with the error alone, which the strict
		// reading may not take (no request id when the request was
		// unreadable): show its safe message, bounded.
		var r struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(m.Data, &r) == nil && r.Error != "" && len(r.Error) < MaxRefusal {
			return zero, "refused: " + r.Error
		}
		return zero, "malformed answer"
	}
	if why := a.Refusal(); why != "" {
		if len(why) >= MaxRefusal {
			why = "(too long to show)"
		}
		return zero, "refused: " + why
	}
	return a, ""
}
