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

// processCPU is the CPU time of the whole process (every thread).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
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

// BenchmarkQRPNGBulk1000 draws 1,000 phone passes on all cores, as the
// desk's bulk print does; one op is the whole page's pictures. Besides
// wall time it reports the process's CPU seconds per page and what they
// make on two free cores (a shared machine's wall time measures its
// neighbours).
func BenchmarkQRPNGBulk1000(b *testing.B) {
	text := phonePassText(b)
	cpu0 := processCPU(b)
	for b.Loop() {
		next := make(chan int)
		done := make(chan error)
		workers := runtime.GOMAXPROCS(0)
		for range workers {
			go func() {
				var err error
				for range next {
					if _, _, e := QRPNG(text, 8); e != nil {
						err = e
					}
				}
				done <- err
			}()
		}
		for i := range 1000 {
			next <- i
		}
		close(next)
		for range workers {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := (processCPU(b) - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu, "cpu-s/page")
	b.ReportMetric(cpu/2, "s/page-on-2-free-cores")
}
