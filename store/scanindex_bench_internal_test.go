package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"passgate/pass"
)

// BenchmarkLastSeenTail measures the repeat lookup in the log (LastSeen)
// over a log of 100,000 indexed scans with tails of different lengths
// not yet indexed, which it reads one by one: the tail's bound is what
// keeps this lookup cheap while the repeat set loads.
//
//	go test ./store -run '^$' -bench LastSeenTail
func BenchmarkLastSeenTail(b *testing.B) {
	for _, tail := range []int{0, 1024, 4096, 16384} {
		b.Run(fmt.Sprintf("tail_%d", tail), func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.stopIndexer()
			at := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
			fill := func(n int) {
				scans := make([]*Scan, n)
				for i := range scans {
					s := &Scan{At: at.Add(time.Duration(i) * time.Millisecond), Source: "gate", Decision: decisionAllow, Reason: "ok"}
					binary.BigEndian.PutUint64(s.PassID[:], uint64(i))
					binary.BigEndian.PutUint64(s.Subject[:], uint64(i*7919)%100_000+1)
					scans[i] = s
				}
				if err := db.InsertScansBulk(ctx, scans); err != nil {
					b.Fatal(err)
				}
			}
			fill(100_000)
			if _, err := db.indexRange(ctx, 1<<40); err != nil {
				b.Fatal(err)
			}
			if tail > 0 {
				fill(tail)
			}
			var subj pass.Subject
			binary.BigEndian.PutUint64(subj[:], 12345)
			b.ResetTimer()
			for range b.N {
				if _, err := db.LastSeen(ctx, subj, pass.ID{1}, at); err != nil && !errors.Is(err, ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	}
}
