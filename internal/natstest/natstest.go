// Package natstest runs a real NATS JetStream cluster in the test
// process: three nats-server nodes routed on loopback, file storage in
// the test's temporary directory, the city account with an administrator,
// the city console's user (citylink.ConsolePermissions) and one user per
// district holding exactly the permissions of citylink.DistrictPermissions
// (the same as deploy/nats, without TLS).
// Nodes can be stopped and started again on the same ports and storage.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"passgate/citylink"
)

// Cluster is a running three-node city cluster.
type Cluster struct {
	t     testing.TB
	dir   string
	nodes []*node
	mu    sync.Mutex

	adminSeed   string
	consoleSeed string
	seeds       map[string]string // district -> seed file
}

type node struct {
	name        string
	port, route int
	conf        string
	srv         *server.Server
}

// Size is the number of nodes: the smallest cluster that keeps an R3
// stream writable with one node down.
const Size = 3

// Start runs a three-node cluster with a user for each district, waits
// until JetStream has a leader, and creates the city stream (R3). It is
// shut down when the test ends.
func Start(t testing.TB, districts ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir(), seeds: map[string]string{}}
	adminPub := ""
	c.adminSeed, adminPub = c.newUser("admin")
	users := []string{fmt.Sprintf("{nkey: %s}", adminPub)}
	var consolePub string
	c.consoleSeed, consolePub = c.newUser("console")
	users = append(users, citylink.ConsoleUser(consolePub))
	for _, d := range districts {
		var pub string
		c.seeds[d], pub = c.newUser("hub-" + d)
		users = append(users, citylink.DistrictUser(d, pub))
	}
	ports := freePorts(t, 2*Size)
	var routes []string
	for i := range Size {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[Size+i]))
	}
	for i := range Size {
		n := &node{name: fmt.Sprintf("n%d", i+1), port: ports[i], route: ports[Size+i]}
		n.conf = filepath.Join(c.dir, n.name+".conf")
		text := NodeConfig(n.name, n.port, n.route, routes, filepath.Join(c.dir, n.name+"-store"), users)
		if err := os.WriteFile(n.conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	for i := range c.nodes {
		c.startNode(i)
	}
	t.Cleanup(c.Shutdown)
	c.ensureStream()
	return c
}

// NodeConfig is one node's nats-server configuration: client and route
// listeners on loopback, JetStream on file in storeDir, the CITY account
// (JetStream enabled) holding users, and a system account.
func NodeConfig(name string, port, route int, routes []string, storeDir string, users []string) string {
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: city
  listen: 127.0.0.1:%d
  routes: [%s]
}
accounts {
  CITY {
    jetstream: enabled
    users: [
      %s
    ]
  }
  SYS {}
}
system_account: SYS
`, name, port, storeDir, route, strings.Join(routes, ", "), strings.Join(users, "\n      "))
}

// newUser makes a user nkey, writes its seed to a file (mode 0600), and
// returns the file and the public key.
func (c *Cluster) newUser(name string) (seedFile, public string) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		c.t.Fatal(err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	seedFile = filepath.Join(c.dir, name+".nk")
	if err := os.WriteFile(seedFile, append(seed, '\n'), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return seedFile, public
}

// freePorts asks the kernel for n free loopback ports. A node keeps its
// ports across restarts, so they are chosen once.
func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	n := c.nodes[i]
	opts, err := server.ProcessConfigFile(n.conf)
	if err != nil {
		c.t.Fatalf("natstest: %s: %v", n.name, err)
	}
	opts.NoLog, opts.NoSigs = true, true
	var srv *server.Server
	for attempt := 0; ; attempt++ {
		srv, err = server.NewServer(opts)
		if err != nil {
			c.t.Fatalf("natstest: %s: %v", n.name, err)
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			break
		}
		srv.Shutdown()
		if attempt == 20 {
			c.t.Fatalf("natstest: %s did not start", n.name)
		}
		time.Sleep(100 * time.Millisecond) // a port of the stopped node not free yet
	}
	c.mu.Lock()
	n.srv = srv
	c.mu.Unlock()
}

// URLs are the nodes' client URLs, comma-separated, as --city takes them.
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(u, ",")
}

// SeedFile is the nkey seed file of district's hub user.
func (c *Cluster) SeedFile(district string) string {
	f, ok := c.seeds[district]
	if !ok {
		c.t.Fatalf("natstest: no user for district %q", district)
	}
	return f
}

// ConsoleSeedFile is the city console user's nkey seed file: it may
// send trace requests to every district and read their answers only.
func (c *Cluster) ConsoleSeedFile() string { return c.consoleSeed }

// AdminSeedFile is the administrator's nkey seed file.
func (c *Cluster) AdminSeedFile() string { return c.adminSeed }

// Connect connects with the nkey seed file, for the test's own checks.
func (c *Cluster) Connect(seedFile string, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		c.t.Fatal(err)
	}
	nc, err := nats.Connect(c.URLs(), append([]nats.Option{o, nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatalf("natstest: connect: %v", err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// Stream is the city stream, through an administrator's connection.
func (c *Cluster) Stream() jetstream.Stream {
	c.t.Helper()
	js, err := jetstream.New(c.Connect(c.adminSeed))
	if err != nil {
		c.t.Fatal(err)
	}
	// A minute: after nodes were stopped and started, the stream's new
	// leader takes long to answer under the race detector on a busy
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		s, err := js.Stream(ctx, citylink.StreamName)
		if err == nil {
			return s
		}
		if ctx.Err() != nil {
			c.t.Fatalf("natstest: city stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ensureStream creates the city stream once the cluster has elected a
// JetStream leader (retrying until it has).
func (c *Cluster) ensureStream() {
	c.t.Helper()
	js, err := jetstream.New(c.Connect(c.adminSeed))
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := citylink.EnsureStream(ctx, js, Size)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// StopNode shuts node i (0 to Size-1) down; its storage stays.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// RestartNode starts a stopped node i again on its ports and storage.
func (c *Cluster) RestartNode(i int) {
	c.t.Helper()
	c.startNode(i)
}

// WaitCurrent waits until every running node's replica of the city
// stream is current, so a node may be stopped without losing the quorum.
func (c *Cluster) WaitCurrent(timeout time.Duration) {
	c.t.Helper()
	s := c.Stream()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := s.Info(ctx)
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			ok := len(info.Cluster.Replicas) == Size-1
			for _, r := range info.Cluster.Replicas {
				ok = ok && r.Current && !r.Offline
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: the stream's replicas are not current after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitNoResponders waits until a request on subject from nc finds no
// responder. The cluster forgets a closed connection's subscriptions
// node by node: until nc's node hears of it, a request is routed to
// where the subscription was and times out. It fails the test on an
// answer, or if a responder still seems to be there after 20 s.
func (c *Cluster) WaitNoResponders(nc *nats.Conn, subject string) {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := nc.Request(subject, nil, time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return
		}
		if err == nil || !errors.Is(err, nats.ErrTimeout) || time.Now().After(deadline) {
			c.t.Fatalf("%s after its responder left: %v, want no responders", subject, err)
		}
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.StopNode(i)
	}
}
