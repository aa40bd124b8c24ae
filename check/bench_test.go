package check_test

import (
	"sync/atomic"
	"testing"
	"time"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/metrics"
)

// BenchmarkEvaluate is the check pipeline without logging: decode, verify
// the chain (the issuer certificate verified once and remembered),
// revocation and policy. Run with -cpu 1 for the per-core rate.
func BenchmarkEvaluate(b *testing.B) {
	f := checktest.New(b)
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = f.Sign(f.Claims())
	}
	b.ReportAllocs()
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := f.Checker.Evaluate(texts[i.Add(1)%int64(len(texts))], f.Now)
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
	f := checktest.New(b)
	benchCheck(b, f)
}

// BenchmarkCheckMetrics is BenchmarkCheck with the checker reporting to
// Prometheus metrics, as serve runs it: the difference is what metrics
// cost a check.
func BenchmarkCheckMetrics(b *testing.B) {
	f := checktest.New(b)
	m := metrics.New(metrics.Config{DB: f.DB, Version: "bench"})
	f.DB.ObserveScanCommits(m.ScanCommitted)
	c, err := check.New(f.Ctx, check.Config{DB: f.DB, Now: func() time.Time { return f.Now }, Observer: m})
	if err != nil {
		b.Fatal(err)
	}
	f.Checker = c
	benchCheck(b, f)
}

func benchCheck(b *testing.B, f *checktest.District) {
	texts := make([]string, 4096)
	for i := range texts {
		texts[i] = f.Sign(f.Claims())
	}
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Checker.Check(f.Ctx, "bench", texts[i.Add(1)%int64(len(texts))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}
