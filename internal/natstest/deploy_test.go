package natstest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"passgate/citylink"
	"passgate/tlsca"
)

// The sample cluster configuration under deploy/nats parses as
// nats-server reads it (TLS on clients and routes, JetStream, three
// routes), and every district hub user and the console's user in it
// hold exactly the permissions they need and nothing more.
func TestDeployConfig(t *testing.T) {
	src := filepath.Join("..", "..", "deploy", "nats")
	dir := t.TempDir()
	if _, err := tlsca.LoadOrCreate(dir, []string{"city1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	acc, err := os.ReadFile(filepath.Join(src, "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), acc, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		b, err := os.ReadFile(filepath.Join(src, n+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer(
			"/etc/nats/tls/"+n+"-key.pem", filepath.Join(dir, tlsca.Subdir, "server.key"),
			"/etc/nats/tls/"+n+".pem", filepath.Join(dir, tlsca.Subdir, "server.crt"),
			"/etc/nats/tls/ca.pem", filepath.Join(dir, tlsca.Subdir, "ca.crt"),
			"/var/lib/nats", filepath.Join(dir, "store")).Replace(string(b))
		conf := filepath.Join(dir, n+".conf")
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if o.ServerName != n || !o.JetStream || o.TLSConfig == nil || o.Cluster.TLSConfig == nil || len(o.Routes) != Size || o.SystemAccount != "SYS" {
			t.Fatalf("%s: name %q jetstream %v tls %v route tls %v routes %d", n, o.ServerName, o.JetStream, o.TLSConfig != nil, o.Cluster.TLSConfig != nil, len(o.Routes))
		}
		districts, consoles := 0, 0
		for _, u := range o.Nkeys {
			if u.Account == nil || u.Account.Name != "CITY" {
				t.Fatalf("%s: user %s outside the CITY account", n, u.Nkey)
			}
			if u.Permissions == nil {
				continue // the administrator
			}
			pub := u.Permissions.Publish.Allow
			if cp, cs := citylink.ConsolePermissions(); slices.Equal(pub, cp) {
				if !slices.Equal(u.Permissions.Subscribe.Allow, cs) || u.Permissions.Response != nil {
					t.Fatalf("%s: console user %s subscribes %v, responses %v; want %v and none", n, u.Nkey, u.Permissions.Subscribe.Allow, u.Permissions.Response, cs)
				}
				consoles++
				continue
			}
			d, ok := strings.CutPrefix(pub[0], "city.")
			d, _ = strings.CutSuffix(d, ".>")
			wantPub, wantSub := citylink.DistrictPermissions(d)
			if !ok || !slices.Equal(pub, wantPub) || !slices.Equal(u.Permissions.Subscribe.Allow, wantSub) {
				t.Fatalf("%s: user %s holds %v / %v, want %v / %v", n, u.Nkey, pub, u.Permissions.Subscribe.Allow, wantPub, wantSub)
			}
			// A hub answers each trace request once; without this it
			// could not answer at all, with more it could flood a reply.
			if r := u.Permissions.Response; r == nil || r.MaxMsgs != citylink.MaxResponses {
				t.Fatalf("%s: user %s responses %+v, want at most %d", n, u.Nkey, r, citylink.MaxResponses)
			}
			districts++
		}
		if districts != 2 || consoles != 1 || len(o.Nkeys) != 4 {
			t.Fatalf("%s: %d users, %d districts, %d consoles", n, len(o.Nkeys), districts, consoles)
		}
	}
}
