package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServe_HTTPS starts serve with --tls-addr: the local CA is created in
// the data directory, a client trusting only that CA reaches the same
// handler over HTTPS, a client without it is refused, and both servers
// stop cleanly.
func TestServe_HTTPS(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, procOpts{inProcess: true, https: true, args: []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--tls-addr", "127.0.0.1:0", "--tls-hosts", "gate.school.example"}})
	base := srv.https
	caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/livez")
	if err != nil {
		t.Fatalf("client trusting the local CA: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/livez over https: %s", resp.Status)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/livez"); err == nil {
		t.Fatal("a client without the local CA trusted the appliance")
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("serve exited %v: %s", err, srv.logs)
	}
}
