package districtsync

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// How an appliance sizes its pushes. A gate on a 4G modem or rural DSL
// may have 64 kbit/s to the hub: a push of MaxScanBatch scans (about a
// megabyte) would take minutes there, so a push is sized to take about
// pushTargetTime at the throughput recent pushes saw, and never more than
// pushMaxBytes. A push that fails or times out halves the next one; each
// success lets the next grow by half again, up to MaxScanBatch.
const (
	pushTargetTime = 10 * time.Second
	pushMaxBytes   = 1 << 20
	// pushFirstRecords is the first push's size, before anything is
	// known of the link: on a slow link it still fits the target, and on
	// a fast one the size reaches MaxScanBatch within a few pushes.
	pushFirstRecords = 500
	pushGrowth       = 1.5
	// pushRateSample: a push smaller than this measures the link's
	// latency more than its throughput, and is left out of the estimate.
	pushRateSample = 4 << 10
)

// pushSizer is a Client's estimate of its link to the hub and the size
// of its next push. Safe for concurrent use.
type pushSizer struct {
	mu        sync.Mutex
	limit     int     // records; 0: nothing known yet
	rate      float64 // bytes per second the link carried; 0: unknown
	perRecord float64 // bytes per record of the last push
}

// records is how many records of each stream the next push asks for.
func (p *pushSizer) records() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.limitLocked()
	if p.rate > 0 && p.perRecord > 0 {
		n = min(n, int(p.rate*pushTargetTime.Seconds()/p.perRecord))
	}
	return max(n, 1)
}

func (p *pushSizer) limitLocked() int {
	if p.limit == 0 {
		return pushFirstRecords
	}
	return p.limit
}

// maxBytes is the largest body the next push should have.
func (p *pushSizer) maxBytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate <= 0 {
		return pushMaxBytes
	}
	return max(min(pushMaxBytes, int(p.rate*pushTargetTime.Seconds())), 1)
}

// succeeded notes a push of records records in size bytes that took
// took, and lets the next one grow.
func (p *pushSizer) succeeded(records, size int, took time.Duration) {
	if records <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.perRecord = float64(size) / float64(records)
	if size >= pushRateSample && took > 0 {
		r := float64(size) / took.Seconds()
		if p.rate == 0 {
			p.rate = r
		} else {
			p.rate = (p.rate + r) / 2 // recent pushes count most
		}
	}
	grown := int(float64(records)*pushGrowth) + 1
	p.limit = min(MaxScanBatch, max(p.limitLocked(), grown))
}

// failed notes a push of records records that failed or timed out, and
// returns the size of the next: half of it, at least one record. The
// throughput estimate halves too, since the link did not carry what it
// was thought to.
func (p *pushSizer) failed(records int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = max(records/2, 1)
	p.rate /= 2
	return p.limit
}

// shrinks says whether a push that failed with err after took should
// make the next one smaller: a time-out, a body too large, or a failure
// (a cut connection, a failing hub) after the push had been under way
// for half the target time, which a smaller push may well have
// survived. A quick failure says nothing of the size (the hub is down,
// the connection was refused) and neither does an answer about the
// appliance itself (gap, unknown, retired).
func shrinks(err error, took time.Duration) bool {
	if isTimeout(err) {
		return true
	}
	var ce *CallError
	if errors.As(err, &ce) {
		if ce.Status == http.StatusRequestEntityTooLarge {
			return true
		}
		if ce.Status < http.StatusInternalServerError {
			return false
		}
	}
	return took >= pushTargetTime/2
}

// isTimeout says whether a failed push ran out of time, at the appliance
// (its client's time limit) or at the hub (which answers 408 "timeout").
func isTimeout(err error) bool {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Status == http.StatusRequestTimeout
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
