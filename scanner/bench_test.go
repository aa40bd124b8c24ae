package scanner_test

import (
	"sync/atomic"
	"testing"
	"time"

	"passgate/metrics"
	"passgate/scanner"
)

// BenchmarkEvaluate is the check pipeline without logging: decode, verify
// the chain (the issuer certificate verified once and remembered),
// revocation and policy. Run with -cpu 1 for the per-core rate.
func BenchmarkEvaluate(b *testing.B) {
	f := newFixture(b)
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = f.sign(f.claims())
	}
	b.ReportAllocs()
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := f.c.Evaluate(texts[i.Add(1)%int64(len(texts))], f.now)
			if !d.Allowed() {
				b.Fatalf("denied: %s", d.Reason)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkCheck is the whole pipeline with every check durably logged
// (group commit), 64 in flight per core.
func BenchmarkCheck(b *testing.B) {
	f := newFixture(b)
	benchCheck(b, f)
}

// BenchmarkCheckMetrics is BenchmarkCheck with the checker reporting to
// Prometheus metrics, as serve runs it: the difference is what metrics
// cost a check.
func BenchmarkCheckMetrics(b *testing.B) {
	f := newFixture(b)
	m := metrics.New(metrics.Config{DB: f.db, Version: "bench"})
	c, err := scanner.New(f.ctx, scanner.Config{DB: f.db, Now: func() time.Time { return f.now }, Observer: m})
	if err != nil {
		b.Fatal(err)
	}
	f.c = c
	benchCheck(b, f)
}

func benchCheck(b *testing.B, f *fixture) {
	texts := make([]string, 4096)
	for i := range texts {
		texts[i] = f.sign(f.claims())
	}
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.c.Check(f.ctx, "bench", texts[i.Add(1)%int64(len(texts))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}
