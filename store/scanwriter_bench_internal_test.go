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
// scans (so every index has depth). "shipped" is the writer with the
// indexer's work included: it runs on the same goroutine here whenever
// the tail reaches indexBatch, and once more at the end for the rest, so
// every scan is indexed within the measurement. "old_schema" is the
// (subject, time) index on the scan table, written row by row by the
// writer, as before the index moved behind the log. The other variants
// are the writer alone without the indexer, with each index removed in
// turn: what that index costs per row. Run it with -benchtime 150x
// -count 3 and compare sub-benchmarks of one run (the machine's load
// moves them together). cpu-ns/scan includes making the scans, the same
// in every variant.
func BenchmarkCommitScans(b *testing.B) {
	variants := []struct {
		name  string
		sql   []string
		index bool // run the indexer
	}{
		{"shipped", nil, true},
		{"old_schema", []string{"CREATE INDEX scans_subject_at ON scans (subject, at_ms) WHERE subject IS NOT NULL"}, false},
		{"writer_only", nil, false},
		{"no_index_at", []string{"DROP INDEX scans_at"}, false},
		{"no_index_source", []string{"DROP INDEX scans_source_at"}, false},
		{"table_only", []string{"DROP INDEX scans_at", "DROP INDEX scans_source_at"}, false},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.stopIndexer() // run here, on the benchmark's goroutine
			for _, q := range v.sql {
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
			index := func(all bool) {
				if !v.index {
					return
				}
				for {
					var mark, top int64
					if err := db.r.QueryRow(scanTailSQL).Scan(&mark, &top); err != nil {
						b.Fatal(err)
					}
					if top-mark == 0 || (!all && top-mark < indexBatch) {
						return
					}
					if _, err := db.indexScans(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			for range 100_000 / batchLen {
				fill()
				if err := db.commitScans(reqs, ids); err != nil {
					b.Fatal(err)
				}
			}
			index(true)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fill()
				b.StartTimer()
				if err := db.commitScans(reqs, ids); err != nil {
					b.Fatal(err)
				}
				index(false)
			}
			index(true)
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
