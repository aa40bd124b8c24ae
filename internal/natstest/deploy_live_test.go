package natstest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
	"passgate/district"
	"passgate/store"
)

// The sample cluster of deploy/nats runs as written: three nodes from its
// files (only ports, paths, keys and district names put in), routes
// verifying each other's certificates, hubs joined over TLS checked
// against the city's CA. A revocation made at one hub reaches the other;
// a client without TLS or without the city's CA is refused, and a hub's
// user on another district's subject is refused by the engine.
func TestDeployCluster_LiveTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	dir := t.TempDir()
	ca := writeTestPKI(t, dir)

	// Two real hubs; their districts take the sample districts' places.
	type hub struct {
		db   *store.DB
		id   string
		seed string
	}
	hubs := make([]hub, 2)
	for i := range hubs {
		db, err := store.Open(context.Background(), filepath.Join(dir, fmt.Sprintf("hub%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		res, err := district.Setup(context.Background(), db, district.SetupOptions{Name: "hub", AdminPassword: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		hubs[i] = hub{db: db, id: res.District.ID}
	}
	acc, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir}
	text := string(acc)
	adminSeed := ""
	for i, sample := range []string{"UDGHF4WU5ZE4LMMKK72GHMPJE7PLLPAJ63IOPVUTQUARZSRS6CQU6D6J", // admin
		"UBCIMVGPYVXUTTPC44YM3ENXBSBAL7HMAZ4NDFO66XCYWDQHC5TLFAEH", // Dyanta01
		"UDO6ORGPKEOUJ43HUAGD7YIA476K4X7EXAZQL5UE3PYXU5WUWADJSTBT", // Dbeilin2
	} {
		if !strings.Contains(text, sample) {
			t.Fatalf("accounts.conf no longer holds the sample user %s", sample)
		}
		seed, pub := c.newUser(fmt.Sprint("user", i))
		text = strings.ReplaceAll(text, sample, pub)
		if i == 0 {
			adminSeed = seed
		} else {
			hubs[i-1].seed = seed
		}
	}
	text = strings.ReplaceAll(strings.ReplaceAll(text, "Dyanta01", hubs[0].id), "Dbeilin2", hubs[1].id)
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	ports := freePorts(t, 9)
	var routes, urls []string
	for i := range Size {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
		urls = append(urls, fmt.Sprintf("tls://127.0.0.1:%d", ports[i]))
	}
	for i := range Size {
		name := fmt.Sprintf("n%d", i+1)
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		r := []string{
			"0.0.0.0:4222", fmt.Sprintf("127.0.0.1:%d", ports[i]),
			"0.0.0.0:6222", fmt.Sprintf("127.0.0.1:%d", ports[3+i]),
			"127.0.0.1:8222", fmt.Sprintf("127.0.0.1:%d", ports[6+i]),
			"/etc/nats/tls/" + name + "-key.pem", filepath.Join(dir, "node-key.pem"),
			"/etc/nats/tls/" + name + ".pem", filepath.Join(dir, "node.pem"),
			"/etc/nats/tls/ca.pem", ca,
			"/var/lib/nats", filepath.Join(dir, "store-"+name),
		}
		for j := range Size {
			r = append(r, fmt.Sprintf("nats-route://city%d:6222", j+1), routes[j])
		}
		conf := strings.NewReplacer(r...).Replace(string(b))
		for _, line := range strings.Split(conf, "\n") {
			if line, _, _ = strings.Cut(line, "#"); strings.Contains(line, "/etc/nats") || strings.Contains(line, "/var/lib") ||
				strings.Contains(line, ":4222") || strings.Contains(line, ":6222") || strings.Contains(line, ":8222") {
				t.Fatalf("%s: the test did not place %q", name, line)
			}
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &node{name: name, port: ports[i], route: ports[3+i], conf: path})
	}
	t.Cleanup(c.Shutdown)
	for i := range Size {
		c.startNode(i)
	}
	cityURLs := strings.Join(urls, ",")

	// The administrator makes the stream, over TLS, once JetStream has a
	// leader.
	admin, err := citylink.Dial(citylink.Config{URLs: cityURLs, SeedFile: adminSeed, CAFile: ca}, "admin", "_INBOX")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := citylink.EnsureStream(ctx, js, Size)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Both hubs join over TLS; a revocation at the first reaches the
	// second.
	for _, h := range hubs {
		l, err := citylink.New(citylink.Config{URLs: cityURLs, SeedFile: h.seed, CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); l.Run(ctx, h.db, slog.New(slog.DiscardHandler)) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	target := make([]byte, 12)
	rand.Read(target)
	if err := hubs[0].db.CreateRevocation(context.Background(), &store.Revocation{Kind: store.RevokePass, Target: target, Reason: "red code"}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for !holds(t, hubs[1].db, target) {
		if time.Now().After(deadline) {
			t.Fatal("the revocation did not reach the other hub over TLS")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Refused: no TLS, and TLS without the city's CA.
	if nc, err := nats.Connect(strings.ReplaceAll(cityURLs, "tls://", "nats://"), nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client without TLS was let in")
	}
	nk, err := nats.NkeyOptionFromSeed(hubs[0].seed)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(cityURLs, nk, nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client that does not check the city's CA connected")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the city's CA: %v, want a certificate error", err)
	}

	// The first hub's user on the second's subject: refused by the engine.
	errs := make(chan error, 4)
	nc, err := citylink.Dial(citylink.Config{URLs: cityURLs, SeedFile: hubs[0].seed, CAFile: ca}, "intruder", citylink.InboxPrefix(hubs[0].id),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(citylink.Subject(hubs[1].id), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, citylink.Subject(hubs[1].id))
}

// holds reports whether db holds a revocation of target.
func holds(t *testing.T, db *store.DB, target []byte) bool {
	t.Helper()
	list, err := db.RevocationsSince(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if bytes.Equal(r.Target, target) {
			return true
		}
	}
	return false
}

// writeTestPKI writes a city CA (ca.pem) and one node certificate
// (node.pem, node-key.pem) for city1..city3 and 127.0.0.1, usable by a
// server and, on routes, as a client: the certificates deploy/nats
// expects. It returns the CA file.
func writeTestPKI(t *testing.T, dir string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "city CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "city1"},
		DNSNames: []string{"city1", "city2", "city3"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("node.pem", "CERTIFICATE", der)
	write("node-key.pem", "EC PRIVATE KEY", keyDER)
	return filepath.Join(dir, "ca.pem")
}
