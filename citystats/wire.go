// Package citystats is the city dashboard: the city health commission's
// console asks every district hub over NATS request-reply for its
// figures (throughput, appliances, how old their lists are, revocations
// held, the city link's lag), each hub answers from counts it keeps
// anyway, and every district that did not answer is named.
//
// No person travels: the request names the officer who asked, the
// answer holds counts and ages only.
package citystats

import (
	"errors"
	"fmt"

	"passgate/cityask"
	"passgate/citylink"
)

// Subject is the NATS subject district's hub answers dashboard requests
// on. Only the city console's user may publish there
// (citylink.ConsolePermissions); each hub subscribes to its own.
func Subject(district string) string { return citylink.StatsSubject(district) }

// Limits of the messages.
const (
	// MaxRequest bounds a request: a version, an id and a name.
	MaxRequest = 256
	// MaxAnswer bounds an answer: a few numbers, or a refusal.
	MaxAnswer = 2048
	// Version is the message format's version.
	Version = 1
	// maxCount bounds every count in an answer: far beyond any district
	// (2^40 scans is a million a second for twelve days), so that sums
	// over the city cannot overflow.
	maxCount = 1 << 40
	// maxAgeS bounds a list's age: ten years, in seconds.
	maxAgeS = 10 * 366 * 24 * 3600
	// maxMS bounds a time: far beyond any date.
	maxMS = 1 << 50
)

// Request is one dashboard request to one district.
type Request struct {
	V int `json:"v"`
	// ID names the request in the district's audit trail.
	ID string `json:"id"`
	// Asker is the city officer whose page asked, as the city's audit
	// trail names them.
	Asker string `json:"asker"`
}

// Answer is one district's figures, or its refusal.
type Answer struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	District string `json:"district"`
	// AtMS is when the hub read the figures.
	AtMS int64 `json:"at_ms"`
	// CountedToMS ends the last whole 5-minute bucket of the scan
	// counts: Scans5m and ScansHour are the 5 minutes and the hour
	// before it.
	CountedToMS int64 `json:"counted_to_ms"`
	Scans5m     int64 `json:"scans_5m"`
	ScansHour   int64 `json:"scans_hour"`
	// ScansToday, Allows and Denies count the district's day so far.
	ScansToday int64 `json:"scans_today"`
	Allows     int64 `json:"allows"`
	Denies     int64 `json:"denies"`
	// Appliances enrolled and not retired; AppliancesSeen, those that
	// called in within the last 10 minutes.
	Appliances     int64 `json:"appliances"`
	AppliancesSeen int64 `json:"appliances_seen"`
	// OldestListS and MedianListS: seconds since the appliances last
	// took the hub's lists, the oldest and the median; absent without
	// appliances.
	OldestListS *int64 `json:"oldest_list_s,omitempty"`
	MedianListS *int64 `json:"median_list_s,omitempty"`
	// Revocations held by the hub.
	Revocations int64 `json:"revocations"`
	// CityLag is how many city stream messages the hub has not applied
	// yet; absent when the hub's link is down (not known).
	CityLag *int64 `json:"city_lag,omitempty"`
	// Error is set, and no figure, when the district refused or failed:
	// a safe message, never the request's content.
	Error string `json:"error,omitempty"`
}

// Refusal is the district's refusal, empty when it answered.
func (a *Answer) Refusal() string { return a.Error }

// ErrBadRequest: a request that is not one this package makes.
var ErrBadRequest = errors.New("malformed city dashboard request")

// ParseRequest reads and checks a request: bounded, strict, the version,
// an id and an asker fit for an audit record. Anything else is
// ErrBadRequest.
func ParseRequest(b []byte) (*Request, error) {
	var r Request
	if err := cityask.DecodeStrict(b, MaxRequest, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	switch {
	case r.V != Version:
		return nil, fmt.Errorf("%w: version %d", ErrBadRequest, r.V)
	case !cityask.ValidID(r.ID):
		return nil, fmt.Errorf("%w: request id", ErrBadRequest)
	case !cityask.ValidAsker(r.Asker):
		return nil, fmt.Errorf("%w: asker", ErrBadRequest)
	}
	return &r, nil
}

// ParseAnswer reads a district's answer to request id: bounded, strict,
// from the district asked and about this request, and its figures
// consistent (no count negative or absurd, the 5 minutes within the
// hour, the day's decisions adding up, no more appliances seen than
// there are, list ages present exactly when there are appliances). A
// hub that answers figures that cannot be is named missing rather than
// shown.
func ParseAnswer(b []byte, district, id string) (*Answer, error) {
	var a Answer
	if err := cityask.DecodeStrict(b, MaxAnswer, &a); err != nil {
		return nil, fmt.Errorf("answer of %s: %w", district, err)
	}
	bad := func(format string, args ...any) (*Answer, error) {
		return nil, fmt.Errorf("answer of %s: %s", district, fmt.Sprintf(format, args...))
	}
	switch {
	case a.V != Version:
		return bad("version %d", a.V)
	case a.District != district || a.ID != id:
		return bad("names district %q and request %q", a.District, a.ID)
	case a.Error != "":
		if len(a.Error) >= cityask.MaxRefusal {
			return bad("refusal of %d bytes", len(a.Error))
		}
		return &a, nil
	}
	for _, n := range []int64{a.Scans5m, a.ScansHour, a.ScansToday, a.Allows, a.Denies, a.Appliances, a.AppliancesSeen, a.Revocations} {
		if n < 0 || n > maxCount {
			return bad("count %d", n)
		}
	}
	switch {
	case a.AtMS <= 0 || a.AtMS > maxMS || a.CountedToMS <= 0 || a.CountedToMS > a.AtMS:
		return bad("time")
	case a.Scans5m > a.ScansHour:
		return bad("more scans in 5 minutes than in the hour")
	case a.Allows+a.Denies != a.ScansToday:
		return bad("the day's decisions do not add up")
	case a.AppliancesSeen > a.Appliances:
		return bad("more appliances seen than enrolled")
	case (a.Appliances > 0) != (a.OldestListS != nil) || (a.OldestListS != nil) != (a.MedianListS != nil):
		return bad("list ages")
	case a.OldestListS != nil && (*a.MedianListS < 0 || *a.MedianListS > *a.OldestListS || *a.OldestListS > maxAgeS):
		return bad("list ages")
	case a.CityLag != nil && (*a.CityLag < 0 || *a.CityLag > maxCount):
		return bad("city lag")
	}
	return &a, nil
}
