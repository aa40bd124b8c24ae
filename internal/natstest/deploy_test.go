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
// routes), and every district hub user in it holds exactly the
// permissions the link needs and nothing more.
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
		districts := 0
		for _, u := range o.Nkeys {
			if u.Account == nil || u.Account.Name != "CITY" {
				t.Fatalf("%s: user %s outside the CITY account", n, u.Nkey)
			}
			if u.Permissions == nil {
				continue // the administrator
			}
			pub := u.Permissions.Publish.Allow
			d, ok := strings.CutPrefix(pub[0], "city.")
			d, _ = strings.CutSuffix(d, ".>")
			wantPub, wantSub := citylink.DistrictPermissions(d)
			if !ok || !slices.Equal(pub, wantPub) || !slices.Equal(u.Permissions.Subscribe.Allow, wantSub) {
				t.Fatalf("%s: user %s holds %v / %v, want %v / %v", n, u.Nkey, pub, u.Permissions.Subscribe.Allow, wantPub, wantSub)
			}
			districts++
		}
		if districts != 2 || len(o.Nkeys) != 3 {
			t.Fatalf("%s: %d users, %d districts", n, len(o.Nkeys), districts)
		}
	}
}
