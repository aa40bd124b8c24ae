package web

import (
	"encoding/json"
	"strings"
	"testing"
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
