package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The pacer halves a batch that held the writer too long, doubles one
// that was quick, stays within [purgeMinBatch, max], and pauses as long
// as the transaction took.
func TestPurgePacer(t *testing.T) {
	ctx := t.Context()
	p := newPurgePacer(1000)
	if p.size != purgeFirstBatch {
		t.Fatalf("first batch %d, want %d", p.size, purgeFirstBatch)
	}
	quick, slow := time.Millisecond, purgeTxTarget+time.Millisecond
	for _, c := range []struct {
		took time.Duration
		want int
	}{
		{quick, 128}, {quick, 256}, {quick, 512}, {quick, 1000}, {quick, 1000},
		{purgeTxTarget * 3 / 4, 1000}, // within the band: kept
		{slow, 500}, {slow, 250}, {slow, 125}, {slow, 62}, {slow, 31}, {slow, 15}, {slow, purgeMinBatch}, {slow, purgeMinBatch},
	} {
		start := time.Now()
		if err := p.next(ctx, c.took); err != nil {
			t.Fatal(err)
		}
		if p.size != c.want {
			t.Fatalf("after %v: batch %d, want %d", c.took, p.size, c.want)
		}
		if waited := time.Since(start); waited < c.took {
			t.Fatalf("after a transaction of %v the pacer waited only %v", c.took, waited)
		}
	}
	small := newPurgePacer(5)
	if small.size != 5 {
		t.Fatalf("a batch of 5 starts at %d", small.size)
	}
	if err := small.next(ctx, slow); err != nil || small.size != 5 {
		t.Fatalf("a slow batch of at most 5 became %d (%v)", small.size, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.next(cctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pause: %v", err)
	}
}
