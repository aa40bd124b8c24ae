package check

import "context"

// NewHeld is New with the repeat window loaded only once hold is closed,
// so that a test sees the checker before the load is done.
func NewHeld(ctx context.Context, cfg Config, hold <-chan struct{}) (*Checker, error) {
	return newChecker(ctx, cfg, hold)
}

// RepeatSetSize is how many passes the repeat set holds.
func (c *Checker) RepeatSetSize() int { return c.recent.size() }
