package web

import (
	"context"
	"time"
)

// SetStreamRecheck shortens how often s's live feed streams recheck
// their login session; streams opened afterwards use it.
func (s *Server) SetStreamRecheck(d time.Duration) { s.events.recheck.Store(int64(d)) }

// SetGateCheckDelay makes every gate screen check wait in f first, as a
// stalled network would. Call it before the first check.
func (s *Server) SetGateCheckDelay(f func(context.Context)) { s.gateCheckDelay = f }
