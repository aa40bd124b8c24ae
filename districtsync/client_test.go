package districtsync

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"passgate/tlsca"
)

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestReadBody_Hostile(t *testing.T) {
	t.Parallel()
	var v PullRequest
	if err := readBody(bytes.NewReader(gzipped(t, []byte(`{"now_ms":5}`))), "gzip", &v); err != nil || v.Now != 5 {
		t.Fatalf("good body: %v %+v", err, v)
	}
	if err := readBody(strings.NewReader(`{"now_ms":6}`), "", &v); err != nil || v.Now != 6 {
		t.Fatalf("plain body: %v", err)
	}
	// Limits scaled down (the real ones are tens of MiB): a gzip bomb,
	// small on the wire and past the limit once inflated, and a body too
	// large on the wire.
	const wire, plain = 4 << 10, 64 << 10
	bomb := gzipped(t, append(append([]byte(`{"now_ms":1,"x":"`), bytes.Repeat([]byte("a"), plain+10)...), `"}`...))
	if len(bomb) > wire {
		t.Fatal("bomb larger than the wire limit: it tests the wrong bound")
	}
	for name, c := range map[string][]byte{
		"gzip bomb":         bomb,
		"too large on wire": gzipped(t, append(append([]byte(`{"now_ms":1,"x":"`), randomLetters(2*wire)...), `"}`...)),
	} {
		if err := readBodyLimits(bytes.NewReader(c), "gzip", &v, wire, plain); !errors.Is(err, errTooLarge) {
			t.Errorf("%s: %v, want errTooLarge", name, err)
		}
	}
	if err := readBodyLimits(bytes.NewReader(gzipped(t, []byte(`{"now_ms":7}`))), "gzip", &v, wire, plain); err != nil || v.Now != 7 {
		t.Fatalf("small body under small limits: %v", err)
	}
	for name, c := range map[string]struct {
		body []byte
		enc  string
	}{
		"empty":              {nil, ""},
		"not json":           {[]byte("hello"), ""},
		"trailing data":      {[]byte(`{"now_ms":1} {"now_ms":2}`), ""},
		"truncated":          {[]byte(`{"now_ms":1`), ""},
		"claims gzip":        {[]byte(`{"now_ms":1}`), "gzip"},
		"truncated gzip":     {gzipped(t, []byte(`{"now_ms":1}`))[:10], "gzip"},
		"unknown encoding":   {[]byte(`{}`), "br"},
		"wrong type":         {[]byte(`{"now_ms":"soon"}`), ""},
		"array not object":   {[]byte(`[1,2]`), ""},
		"deep nesting":       {[]byte(strings.Repeat("[", 20000)), ""},
		"nul bytes":          {[]byte("\x00\x00"), ""},
		"gzip of not json":   {gzipped(t, []byte("not json")), "gzip"},
		"gzip trailing junk": {append(gzipped(t, []byte(`{}`)), "junk"...), "gzip"},
	} {
		var v PullRequest
		if err := readBody(bytes.NewReader(c.body), c.enc, &v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// randomLetters is incompressible text.
func randomLetters(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
	return b
}

func FuzzReadBody(f *testing.F) {
	f.Add([]byte(`{"now_ms":1}`), false)
	f.Add(gzipped(f, []byte(`{"revocations_after":3}`)), true)
	f.Fuzz(func(t *testing.T, b []byte, gz bool) {
		enc := ""
		if gz {
			enc = "gzip"
		}
		var v PullRequest
		_ = readBody(bytes.NewReader(b), enc, &v) // must not panic or hang
	})
}

func FuzzParseRequestFile(f *testing.F) {
	f.Add([]byte(`{"format":"passgate-enrol-request/1","request":{"secret":"AAAAAAAAAAAAAAAAAAAAAA==","bundle_key":"","now_ms":1}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseRequestFile(b)
		if err == nil && req == nil {
			t.Fatal("nil request without an error")
		}
	})
}

func TestParseHubURL(t *testing.T) {
	t.Parallel()
	if _, err := ParseHubURL("https://10.0.0.5:8443/"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "http://h:1", "https://", "https://u:p@h:1", "https://h:1/?x=1", "https://h:1/#f", "ftp://h", "https://h:1" + strings.Repeat("/a", 2000)} {
		if _, err := ParseHubURL(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// The pinned client accepts the hub whose chain ends in the pinned CA,
// also when the server leaves the CA out of its chain once the CA itself
// is known (after enrolment), and refuses anything else.
func TestClient_Pinning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	auth, err := tlsca.LoadOrCreate(dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca := auth.CACertDER()
	pin, _ := PinOfDER(ca)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"now_ms":42}`))
	})
	withCA := serveTLS(t, ok, auth.TLSConfig(), ca)
	// A server sending the leaf only.
	leafOnly := serveTLS(t, ok, auth.TLSConfig(), nil)
	other, _ := tlsca.LoadOrCreate(t.TempDir(), []string{"127.0.0.1"}, time.Now())
	impostor := serveTLS(t, ok, other.TLSConfig(), other.CACertDER())

	call := func(c *Client) error {
		var resp PullResponse
		err := c.Call(t.Context(), PathPull, &PullRequest{}, &resp)
		if err == nil && resp.Now != 42 {
			t.Fatalf("answer %+v", resp)
		}
		return err
	}
	byPin := func(url string) *Client {
		c, err := NewClient(url, pin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	byCA := func(url string) *Client {
		c, err := NewClientCA(url, ca, bytes.Repeat([]byte{1}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := call(byPin(withCA)); err != nil {
		t.Fatalf("pin, CA in chain: %v", err)
	}
	if err := call(byCA(leafOnly)); err != nil {
		t.Fatalf("CA known, leaf only: %v", err)
	}
	if err := call(byPin(leafOnly)); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("pin only, CA not sent: %v", err)
	}
	if err := call(byPin(impostor)); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("impostor by pin: %v", err)
	}
	if err := call(byCA(impostor)); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("impostor by CA: %v", err)
	}
	if _, err := NewClient(withCA, pin[:3], nil); err == nil {
		t.Fatal("short pin accepted")
	}
}
