package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"passgate/citylink"
	"passgate/pass"
)

// The city cluster's setup commands: a district hub's NATS user, and the
// city stream. Both run on the city's administration machine.

// cmdCityNatsUser makes a district hub's, or the city console's, NATS
// credentials: an nkey seed file (mode 0600) for --city-creds, and the
// cluster's configuration entry that holds that key to the district's
// subjects, or to asking the districts' traces.
func cmdCityNatsUser(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city nats-user", "--district ID --out FILE | --console --out FILE")
	district := fs.String("district", "", "the district's identifier, as its trust anchor file names it")
	console := fs.Bool("console", false, "the city console's user (serve --city-key, city trace): it may ask every district's trace and nothing else")
	out := fs.String("out", "", "the seed file to write, for --city-creds (required; must not exist)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if (*district == "") == !*console || *out == "" {
		return e.usageError("city nats-user", "--out and one of --district or --console are required")
	}
	if !*console {
		if err := pass.CheckIdent("district", *district); err != nil {
			return e.usageError("city nats-user", "%v", err)
		}
	}
	if _, err := os.Stat(*out); err == nil {
		return e.fail(fmt.Errorf("make city user: %s exists already", *out))
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return e.fail(fmt.Errorf("make city user: %w", err))
	}
	seed, err := kp.Seed()
	if err != nil {
		return e.fail(fmt.Errorf("make city user: %w", err))
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return e.fail(fmt.Errorf("make city user: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		return e.fail(fmt.Errorf("make city user: %w", err))
	}
	if err := writeBytes(*out, append(seed, '\n')); err != nil {
		return e.fail(fmt.Errorf("make city user: write seed: %w", err))
	}
	if *console {
		fmt.Fprintf(e.stdout, "# the city console: add to the CITY account's users in every node's accounts.conf\n%s\n", citylink.ConsoleUser(pub))
		fmt.Fprintf(e.stderr, "give %s to the city console's admin only (--city-creds); it asks the districts' traces and figures and publishes city-wide status changes and retirements\n", *out)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "# district %s hub: add to the CITY account's users in every node's accounts.conf\n%s\n", *district, citylink.DistrictUser(*district, pub))
	fmt.Fprintf(e.stderr, "give %s to district %s's hub admin only (--city-creds); it is the district's voice in the city\n", *out, *district)
	return exitOK
}

// cmdCityStreams creates (or updates) the city stream, with the city
// administrator's credentials.
func cmdCityStreams(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city streams", "--city URLS --city-creds FILE [--city-ca FILE] [--replicas 3]")
	urls := fs.String("city", "", "the city cluster's NATS URLs, comma-separated (required)")
	creds := fs.String("city-creds", "", "the administrator's nkey seed file (required)")
	ca := fs.String("city-ca", "", "PEM CA of the cluster's TLS certificates")
	replicas := fs.Int("replicas", 3, "copies of the stream, on distinct nodes")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *urls == "" || *creds == "" {
		return e.usageError("city streams", "--city and --city-creds are required")
	}
	if *replicas < 1 || *replicas > 5 {
		return e.usageError("city streams", "--replicas must be 1 to 5")
	}
	nkey, err := nats.NkeyOptionFromSeed(*creds)
	if err != nil {
		return e.fail(fmt.Errorf("create city stream: %w", err))
	}
	opts := []nats.Option{nkey, nats.Name("passgate city streams")}
	if *ca != "" {
		opts = append(opts, nats.RootCAs(*ca))
	}
	nc, err := nats.Connect(*urls, opts...)
	if err != nil {
		return e.fail(fmt.Errorf("create city stream: %w", err))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return e.fail(fmt.Errorf("create city stream: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := citylink.EnsureStream(ctx, js, *replicas)
	if err != nil {
		return e.fail(err)
	}
	info := s.CachedInfo()
	fmt.Fprintf(e.stdout, "stream %s: subjects %v, R%d on file, %d messages\n", info.Config.Name, info.Config.Subjects, info.Config.Replicas, info.State.Msgs)
	return exitOK
}
