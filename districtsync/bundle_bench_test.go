package districtsync

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBundle_Scans measures a round of the by-file sync of 100,000
// scans (PASSGATE_BENCH_SCANS to change it): the appliance writes its
// bundle, the hub imports it. Reported: bundle bytes per scan, and scans
// per second for export and import.
func BenchmarkBundle_Scans(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("PASSGATE_BENCH_SCANS")); err == nil && v > 0 {
		n = v
	}
	ctx := b.Context()
	var exportTime, importTime time.Duration
	var size int
	for range b.N {
		b.StopTimer()
		h := newBundleHub(b, "Bench district")
		app := enrolByFiles(b, h, "gate-a")
		logBundleScans(b, app, n)
		b.StartTimer()

		start := time.Now()
		var buf bytes.Buffer
		res, err := ExportUp(ctx, app, &buf)
		if err != nil {
			b.Fatal(err)
		}
		exportTime += time.Since(start)
		if res.Records < n {
			b.Fatalf("%d records in the bundle", res.Records)
		}
		size = buf.Len()
		start = time.Now()
		ir, err := ImportBundle(ctx, h, &buf)
		if err != nil {
			b.Fatal(err)
		}
		importTime += time.Since(start)
		if ir.Stored < n {
			b.Fatalf("%d stored", ir.Stored)
		}
	}
	b.ReportMetric(float64(size)/float64(n), "bytes/scan")
	b.ReportMetric(float64(n*b.N)/exportTime.Seconds(), "export-scans/s")
	b.ReportMetric(float64(n*b.N)/importTime.Seconds(), "import-scans/s")
}
