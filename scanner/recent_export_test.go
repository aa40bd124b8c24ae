package scanner

// WithSeedHold makes the checker load its repeat window only once hold is
// closed, so that a test sees the checker before the load is done.
func WithSeedHold(hold <-chan struct{}) Option { return func(c *Checker) { c.holdSeed = hold } }

// RepeatSetSize is how many passes the repeat set holds.
func (c *Checker) RepeatSetSize() int { return c.recent.size() }
