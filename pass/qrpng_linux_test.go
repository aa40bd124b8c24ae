package pass

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// threadCPU is the CPU time the calling OS thread has used: on a shared
// machine wall time mostly measures the other processes.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQRPNGOverMatrix alternates go-qrcode's matrix alone and the
// whole PNG at the phone scale within each iteration, on one OS thread,
// and reports the PNG's CPU time as a multiple of the matrix's: both see
// the same machine, so the ratio holds where absolute times do not.
func BenchmarkQRPNGOverMatrix(b *testing.B) {
	text := phonePassText(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var matrix, whole time.Duration
	const batch = 20 // rusage ticks are coarse: time batches
	for b.Loop() {
		start := threadCPU(b)
		for range batch {
			q, err := qrcode.New(text, qrcode.Medium)
			if err != nil {
				b.Fatal(err)
			}
			qrSink = q.Bitmap()
		}
		mid := threadCPU(b)
		for range batch {
			png, _, err := QRPNG(text, 8)
			if err != nil {
				b.Fatal(err)
			}
			qrSink = png
		}
		matrix += mid - start
		whole += threadCPU(b) - mid
	}
	b.ReportMetric(float64(whole)/float64(matrix), "png/matrix")
	b.ReportMetric(float64(matrix.Microseconds())/float64(b.N*batch), "matrix-cpu-µs")
	b.ReportMetric(float64(whole.Microseconds())/float64(b.N*batch), "png-cpu-µs")
}
