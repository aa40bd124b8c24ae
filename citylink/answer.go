package citylink

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"

	"passgate/store"
)

// AnswerFunc answers one kind of the city console's requests for
// district on the link's connection until ctx ends (Config.Answer); it
// returns at once when it cannot subscribe.
type AnswerFunc = func(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error

// Answerers runs every fn together as one Config.Answer: the hub answers
// traces and dashboard requests on one connection. When one fails the
// others are stopped and its error returned, so that the link starts
// them all again together rather than subscribing one twice.
func Answerers(fns ...AnswerFunc) AnswerFunc {
	return func(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			wg    sync.WaitGroup
			once  sync.Once
			first error
		)
		for _, fn := range fns {
			wg.Go(func() {
				if err := fn(ctx, nc, db, district); err != nil {
					once.Do(func() { first = err })
				}
				cancel()
			})
		}
		wg.Wait()
		return first
	}
}

// Lag is how many messages on the city stream the hub has not applied
// yet, and whether that is known: not while the link is down.
func (l *Link) Lag() (int64, bool) {
	return l.lag.Load(), l.connected.Load()
}
