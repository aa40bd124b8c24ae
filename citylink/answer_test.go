package citylink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/store"
)

// Answerers runs every answerer until ctx ends; when one cannot
// subscribe, the others stop too and its error comes back, so the link
// starts them again together.
func TestAnswerers(t *testing.T) {
	stopped := make(chan string, 2)
	wait := func(name string) AnswerFunc {
		return func(ctx context.Context, _ *nats.Conn, _ *store.DB, _ string) error {
			<-ctx.Done()
			stopped <- name
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Answerers(wait("trace"), wait("stats"))(ctx, nil, nil, "d1") }()
	select {
	case <-done:
		t.Fatal("returned before ctx ended")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil || len(stopped) != 2 {
		t.Fatalf("%v, %d stopped", err, len(stopped))
	}
	<-stopped
	<-stopped

	failed := errors.New("subscribe: permissions")
	fail := func(context.Context, *nats.Conn, *store.DB, string) error { return failed }
	go func() { done <- Answerers(wait("trace"), fail)(context.Background(), nil, nil, "d1") }()
	select {
	case err := <-done:
		if !errors.Is(err, failed) || <-stopped != "trace" {
			t.Fatalf("%v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("one answerer failed and the other ran on")
	}
}
