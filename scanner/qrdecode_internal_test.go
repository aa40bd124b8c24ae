package scanner

import "testing"

// TestEnlarge pins the 2× bilinear enlargement: flat stays flat, and a
// step between two pixels becomes a ramp at the same place, so module
// edges do not move when a small code is enlarged.
func TestEnlarge(t *testing.T) {
	t.Parallel()
	flat := make([]byte, 8*4)
	for i := range flat {
		flat[i] = 77
	}
	out, w, h := enlarge(flat, 8, 2, 1, 6, 3)
	if w != 8 || h != 4 {
		t.Fatalf("size %d×%d, want 8×4", w, h)
	}
	for i, v := range out {
		if v != 77 {
			t.Fatalf("pixel %d = %d, want 77", i, v)
		}
	}
	// One row: 0 0 100 100 enlarges to 0 0 0 25 75 100 100 100.
	step := []byte{0, 0, 100, 100}
	out, _, _ = enlarge(step, 4, 0, 0, 4, 1)
	want := []byte{0, 0, 0, 25, 75, 100, 100, 100}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("step enlarged to %v, want %v", out[:8], want)
		}
	}
}

func TestHalve(t *testing.T) {
	t.Parallel()
	in := []byte{
		0, 4, 8, 8, 1,
		4, 0, 8, 8, 1,
		9, 9, 9, 9, 9,
	}
	out, w, h := halve(in, 5, 3)
	if w != 2 || h != 1 || out[0] != 2 || out[1] != 8 {
		t.Fatalf("halve = %v (%d×%d), want [2 8] (2×1)", out, w, h)
	}
}

// TestFinderBoxRegion: the region is cut to the frame and to
// maxCropPixels however far apart the (possibly false) finder patterns
// are.
func TestFinderBoxRegion(t *testing.T) {
	t.Parallel()
	var b finderBox
	if _, _, _, _, ok := b.region(1280, 720); ok {
		t.Fatal("a region without finder patterns")
	}
	b = finderBox{n: 2, minX: -50, minY: 10, maxX: 5000, maxY: 700, module: 4}
	x0, y0, x1, y1, ok := b.region(1280, 720)
	if !ok || x0 < 0 || y0 < 0 || x1 > 1280 || y1 > 720 || (x1-x0)*(y1-y0) > maxCropPixels {
		t.Fatalf("region %d,%d-%d,%d %v", x0, y0, x1, y1, ok)
	}
}
