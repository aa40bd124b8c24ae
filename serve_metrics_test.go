package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServe_Metrics starts serve with a metrics token and loopback trust
// off: /metrics refuses an anonymous client, serves the token's holder,
// and counts a check made through the scan API, which shows the checker
// is wired to the metrics.
func TestServe_Metrics(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PASSGATE_ADMIN_PASSWORD": "metrics test password"}
	device := strings.TrimSpace(runCLI(t, env, "", "device", "add", "--data", dir, "gate-1").stdout)
	if device == "" {
		t.Fatal("device add printed no token")
	}
	const token = "a-scrape-token-of-32-characters!"
	tokenFile := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := start(t, procOpts{inProcess: true, env: env, args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--metrics-token-file", tokenFile, "--metrics-loopback=false"}})
	base := srv.http
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous loopback client with --metrics-loopback=false: %d, want 401", code)
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/scans", strings.NewReader(`{"payload":"not a pass"}`))
	req.Header.Set("Authorization", "Bearer "+device)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scan: %s", resp.Status)
	}

	code, body := get("Bearer " + token)
	if code != http.StatusOK {
		t.Fatalf("with the metrics token: %d %.300s", code, body)
	}
	for _, want := range []string{
		`passgate_checks_total{decision="deny",reason="not_a_pass"} 1`,
		`passgate_checks_total{decision="allow",reason="ok"} 0`,
		`passgate_build_info{goversion="`,
		`passgate_db_size_bytes{file="db"}`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := srv.stop(); err != nil {
		t.Fatalf("serve exited %v: %s", err, srv.logs)
	}
}

func TestReadMetricsToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "0123456789abcdef0123"
	for _, tc := range []struct {
		name, content string
		want          string // "" with wantErr
		wantErr       string
	}{
		{"Plain", good, good, ""},
		{"TrailingNewline", good + "\r\n", good, ""},
		{"Empty", "", "", "shorter"},
		{"Short", "abc\n", "", "shorter"},
		{"Long", strings.Repeat("a", 257), "", "longer"},
		{"Huge", strings.Repeat("a", 1<<20), "", "longer"},
		{"InnerSpace", "0123456789 abcdef0123", "", "printable"},
		{"NUL", "0123456789\x00abcdef0123", "", "printable"},
		{"NonASCII", "0123456789abcdef令牌", "", "printable"},
		{"TwoLines", good + "\n" + good, "", "printable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readMetricsToken(write(tc.name, tc.content))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error about %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := readMetricsToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing token file was accepted")
	}
	if tok, err := readMetricsToken(""); tok != "" || err != nil {
		t.Errorf("no file: %q %v, want no token", tok, err)
	}
}

// TestServe_MetricsUsage: a bad metrics setting stops serve before it
// opens anything, with the reason.
func TestServe_MetricsUsage(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.token")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"LoopbackEnv", map[string]string{"PASSGATE_METRICS_LOOPBACK": "maybe"}, nil, "PASSGATE_METRICS_LOOPBACK"},
		{"ShortToken", nil, []string{"--metrics-token-file", short}, "shorter than 16"},
		{"MissingToken", nil, []string{"--metrics-token-file", filepath.Join(dir, "none")}, "--metrics-token-file"},
		{"TokenFromEnv", map[string]string{"PASSGATE_METRICS_TOKEN_FILE": short}, nil, "shorter than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			r := runCLI(t, tc.env, "", append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, tc.args...)...)
			if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", r.code, r.stderr, exitError, tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("serve created the data directory before refusing: %v", err)
			}
		})
	}
}
