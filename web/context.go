package web

import (
	"context"

	"passgate/store"
)

type ctxKey int

const userKey ctxKey = iota

func withUser(ctx context.Context, u *store.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// userFrom returns the logged-in user of a request that passed guard.
func userFrom(ctx context.Context) *store.User {
	u, _ := ctx.Value(userKey).(*store.User)
	return u
}
