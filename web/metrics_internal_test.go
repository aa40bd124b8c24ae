package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

const internalToken = "0123456789abcdef-metrics"

func TestMetricsScraper(t *testing.T) {
	t.Parallel()
	a := MetricsAccess{Token: internalToken, Loopback: true}
	for _, tc := range []struct {
		name, remote, auth string
		header             string // a forwarding header to add
		want               scraperVerdict
	}{
		{"Loopback", "127.0.0.1:5000", "", "", scraperTrusted},
		{"Loopback127Net", "127.8.9.10:5000", "", "", scraperTrusted},
		{"IPv6Loopback", "[::1]:5000", "", "", scraperTrusted},
		{"MappedLoopback", "[::ffff:127.0.0.1]:5000", "", "", scraperTrusted},
		{"LAN", "192.168.1.9:5000", "", "", scraperUnknown},
		{"Unspecified", "0.0.0.0:5000", "", "", scraperUnknown},
		{"NoPort", "127.0.0.1", "", "", scraperUnknown},
		{"Garbage", "localhost:5000", "", "", scraperUnknown},
		{"Empty", "", "", "", scraperUnknown},
		{"Proxied", "127.0.0.1:5000", "", "X-Forwarded-For", scraperUnknown},
		{"RealIP", "127.0.0.1:5000", "", "X-Real-Ip", scraperUnknown},
		{"Token", "192.168.1.9:5000", "Bearer " + internalToken, "", scraperTrusted},
		{"TokenPadded", "192.168.1.9:5000", "Bearer   " + internalToken + " ", "", scraperTrusted},
		{"TokenBehindProxy", "127.0.0.1:5000", "Bearer " + internalToken, "Forwarded", scraperTrusted},
		{"WrongToken", "127.0.0.1:5000", "Bearer " + strings.ToUpper(internalToken), "", scraperBadToken},
		{"TokenWithSuffix", "192.168.1.9:5000", "Bearer " + internalToken + "x", "", scraperBadToken},
		{"EmptyBearer", "127.0.0.1:5000", "Bearer ", "", scraperBadToken},
		{"SchemeOnly", "127.0.0.1:5000", "Bearer", "", scraperBadToken},
		{"Basic", "127.0.0.1:5000", "Basic " + internalToken, "", scraperBadToken},
		{"Huge", "127.0.0.1:5000", "Bearer " + strings.Repeat("a", 1<<16), "", scraperBadToken},
		{"NUL", "127.0.0.1:5000", "Bearer " + internalToken + "\x00", "", scraperBadToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.RemoteAddr = tc.remote
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.header != "" {
				r.Header.Set(tc.header, "192.168.1.9")
			}
			if got := a.scraper(r); got != tc.want {
				t.Fatalf("verdict %d, want %d", got, tc.want)
			}
		})
	}
	// Without a token configured, every token is wrong; without loopback
	// trust, the appliance itself is anonymous.
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	if got := (MetricsAccess{}).scraper(r); got != scraperUnknown {
		t.Errorf("loopback without loopback trust: %d", got)
	}
	r.Header.Set("Authorization", "Bearer "+internalToken)
	if got := (MetricsAccess{Loopback: true}).scraper(r); got != scraperBadToken {
		t.Errorf("a token with none configured: %d", got)
	}
}

// FuzzBearerToken: any header value is parsed without panic, and what is
// accepted is the bounded, trimmed remainder after the scheme.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer abc", "bearer  x ", "Basic abc", "Bearer \x00", "BEARER " + strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused %q but returned %q", h, tok)
			}
			return
		}
		if tok == "" || len(tok) > MaxMetricsToken || tok != strings.TrimSpace(tok) {
			t.Fatalf("accepted %q as %q", h, tok)
		}
		if !strings.EqualFold(h[:7], "Bearer ") || !strings.Contains(h, tok) {
			t.Fatalf("accepted %q as %q: not its bearer token", h, tok)
		}
	})
}
