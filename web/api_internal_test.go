package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passgate/store"
)

// scanBodies are request bodies of the scan API, well formed and hostile:
// the shortcut must read each exactly as encoding/json does, or leave it
// to encoding/json.
var scanBodies = []string{
	`{"payload":"PG1:ABC.DEF"}`, ` {"payload" : "x"} `, "\t{\n\"payload\"\r:\"x\"\n}\n", `{"payload":""}`,
	`{"payload":"a b~!#$%&'()*+,-./:;<=>?@[]^_{|}` + "\x7f" + `"}`,
	`{"PAYLOAD":"x"}`, `{"Payload":"x"}`, `{"payload":"a","payload":"b"}`, `{"payload":"a","other":1}`,
	`{"other":1,"payload":"a"}`, `{"payload":"a\"b"}`, `{"payload":"a\\b"}`, `{"payload":"\u0041"}`,
	`{"payload":"\ud800"}`, `{"payload":"` + "\u2028" + `"}`, `{"payload":"张三"}`, "{\"payload\":\"\xff\"}",
	"{\"payload\":\"a\x00b\"}", "{\"payload\":\"a\nb\"}", "{\"payload\":\"a\x1fb\"}", `{"payload":null}`,
	`{"payload":42}`, `{"payload":["x"]}`, `{"payload":"x"}x`, `{"payload":"x"}}`, `{"payload":"x",}`,
	`{"payload":"x"`, `{"payload":"x`, `{"payload":}`, `{"payload"}`, `{payload:"x"}`, `{'payload':'x'}`,
	`"x"`, `[]`, `{}`, ``, ` `, `null`, "\v{\"payload\":\"x\"}", "\u00a0{\"payload\":\"x\"}",
	`{"payload":"x"}` + "\x00", `{"pay\u006coad":"x"}`, `{ "payload":"` + strings.Repeat("A", 4000) + `"}`,
}

// decodeScanJSON is how encoding/json reads a scan request's body.
func decodeScanJSON(body []byte) (string, error) {
	var req scanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", errScanNotJSON
	}
	if req.Payload == nil {
		return "", errScanNoPayload
	}
	return *req.Payload, nil
}

func TestScanPayloadIsEncodingJSON(t *testing.T) {
	short := 0
	for _, body := range scanBodies {
		want, wantErr := decodeScanJSON([]byte(body))
		got, err := scanPayload([]byte(body))
		if got != want || err != wantErr {
			t.Errorf("scanPayload(%q) = %q, %v; encoding/json: %q, %v", body, got, err, want, wantErr)
		}
		if p, ok := plainPayload([]byte(body)); ok {
			short++
			if wantErr != nil || p != want {
				t.Errorf("shortcut read %q as %q; encoding/json: %q, %v", body, p, want, wantErr)
			}
		}
	}
	if short < 5 {
		t.Errorf("the shortcut read only %d bodies: the scanner's usual body goes the slow way", short)
	}
}

func FuzzScanPayload(f *testing.F) {
	for _, body := range scanBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := decodeScanJSON(body)
		got, err := scanPayload(body)
		if got != want || err != wantErr {
			t.Fatalf("scanPayload(%q) = %q, %v; encoding/json: %q, %v", body, got, err, want, wantErr)
		}
	})
}

func BenchmarkScanPayload(b *testing.B) {
	body := []byte(`{"payload":"` + strings.Repeat("PG1ABCDEFGH", 30) + `"}`)
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeScanJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scanPayload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := scanPayload(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDeviceCacheForgetRacesLookup revokes a device while a lookup of its
// token, begun before the revocation, is still reading the database: the
// device it read must not be kept, or the revoked token would be let in
// for the cache's lifetime.
func TestDeviceCacheForgetRacesLookup(t *testing.T) {
	dev := &store.Device{Name: "gate-1"}
	var lookups atomic.Int32
	reading, revoked := make(chan struct{}), make(chan struct{})
	c := &deviceCache{ttl: time.Hour, m: make(map[[32]byte]cachedDevice)}
	c.lookup = func(ctx context.Context, token string) (*store.Device, error) {
		if lookups.Add(1) == 1 {
			close(reading)
			<-revoked // the row read was the one before the revocation
			return dev, nil
		}
		return nil, store.ErrNotFound
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.find(t.Context(), "pgd_token")
		done <- err
	}()
	<-reading
	c.forget("gate-1")
	close(revoked)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, err := c.find(t.Context(), "pgd_token"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the revocation: %v, %v; want it looked up again and refused", d, err)
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}
}

// TestDeviceCacheKeepsLookups holds the cache to its purpose: a known
// token is looked up once per lifetime, an unknown one every time.
func TestDeviceCacheKeepsLookups(t *testing.T) {
	var lookups atomic.Int32
	c := &deviceCache{ttl: time.Hour, m: make(map[[32]byte]cachedDevice)}
	c.lookup = func(ctx context.Context, token string) (*store.Device, error) {
		lookups.Add(1)
		if token == "pgd_known" {
			return &store.Device{Name: "gate-1"}, nil
		}
		return nil, store.ErrNotFound
	}
	for range 3 {
		if d, err := c.find(t.Context(), "pgd_known"); err != nil || d.Name != "gate-1" {
			t.Fatalf("known token: %v %v", d, err)
		}
		if _, err := c.find(t.Context(), "pgd_unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
	}
	if _, err := c.find(t.Context(), strings.Repeat("x", maxDeviceToken+1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("oversized token: %v", err)
	}
	if n := lookups.Load(); n != 4 {
		t.Fatalf("%d lookups, want 4 (one of the known token, three of the unknown)", n)
	}
}
