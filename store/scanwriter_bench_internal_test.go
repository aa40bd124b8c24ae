package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCommitScans measures what one scan costs the group-commit
// writer, per row, in batches of 256 on a log already holding 100,000
// scans (so every index has depth): as shipped, and with each index on
// the scan log removed in turn, which is what that index costs per row. Run it with -benchtime 200x -count 5 and compare
// sub-benchmarks of one run (the machine's load moves them together).
// cpu-ns/scan includes making the scans, the same in every variant.
func BenchmarkCommitScans(b *testing.B) {
	variants := []struct {
		name string
		drop []string
	}{
		{"shipped", nil},
		{"no_index_at", []string{"DROP INDEX scans_at"}},
		{"no_index_subject", []string{"DROP INDEX scans_subject_at"}},
		{"no_index_source", []string{"DROP INDEX scans_source_at"}},
		{"table_only", []string{"DROP INDEX scans_at",
			"DROP INDEX scans_subject_at", "DROP INDEX scans_source_at"}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for _, q := range v.drop {
				if _, err := db.w.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			const batchLen = 256
			at := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
			n := uint64(0)
			reqs := make([]*scanReq, batchLen)
			ids := make([]int64, batchLen)
			fill := func() {
				for i := range reqs {
					n++
					at = at.Add(3 * time.Millisecond)
					s := &Scan{At: at, Source: fmt.Sprintf("gate-%d", n%16), Decision: decisionAllow, Reason: "ok"}
					if n%10 == 0 {
						s.Decision, s.Reason = decisionDeny, "status_red"
					}
					h := n * 0x9e3779b97f4a7c15
					binary.BigEndian.PutUint64(s.PassID[:], h)
					binary.BigEndian.PutUint64(s.Subject[:], (h>>20)%100_000+1)
					s.KID[0] = 1
					reqs[i] = &scanReq{s: s}
				}
			}
			for range 100_000 / batchLen {
				fill()
				if err := db.commitScans(reqs, ids); err != nil {
					b.Fatal(err)
				}
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fill()
				b.StartTimer()
				if err := db.commitScans(reqs, ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchLen), "ns/scan")
			// CPU time (user and system, the whole process: the fill is
			// in it too, the same for every variant) is steadier than the
			// wall clock on a shared machine, where fsync waits vary.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*batchLen), "cpu-ns/scan")
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
