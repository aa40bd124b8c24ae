package web

import (
	"context"
	"time"
)

// backlogState is how long the oldest record waiting for the district
// hub has waited, and whether that passes the policy's warning
// threshold: a gate whose uplink is too slow or broken keeps checking,
// but its scans are not seen at the hub, which someone must notice.
type backlogState struct {
	Age  time.Duration // zero: nothing waits
	Warn time.Duration // the policy's threshold
	Late bool
}

// backlogState reads the backlog's age of an enrolled appliance; the zero
// state when the age cannot be read (the page and /readyz still answer).
func (s *Server) backlogState(ctx context.Context, now time.Time) backlogState {
	var st backlogState
	oldest, err := s.db.OldestWaiting(ctx)
	if err != nil {
		s.log.Warn("oldest record waiting for the hub", "err", err)
		return st
	}
	pol, err := s.db.Policy(ctx)
	if err != nil {
		s.log.Warn("policy", "err", err)
		return st
	}
	st.Warn = pol.BacklogWarn
	if !oldest.IsZero() {
		st.Age = max(now.Sub(oldest), 0)
		st.Late = st.Age > st.Warn
	}
	return st
}
