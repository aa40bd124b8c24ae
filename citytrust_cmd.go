package main

import (
	"context"
	"fmt"
	"time"

	"passgate/citylink"
	"passgate/pass"
)

// cmdCityPublishRetire publishes a `city retire` file to the city
// stream as the city console's user: every district hub applies it from
// there. The file is checked first against the city root's anchor file,
// so that nothing but a retirement the city root signed is sent.
func cmdCityPublishRetire(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city publish-retire", "--city URLS --city-creds FILE [--city-ca FILE] --city-anchor FILE FILE")
	urls := fs.String("city", "", "the city cluster's NATS URLs, comma-separated (required)")
	creds := fs.String("city-creds", "", "the city console user's nkey seed file, made by passgate city nats-user --console (required)")
	ca := fs.String("city-ca", "", "PEM CA the city cluster's TLS certificates are checked against; empty: the system's")
	anchorPath := fs.String("city-anchor", "", "the city root's anchor file, from `passgate city init` (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the city stream's acknowledgement, 1s to 10m")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("city publish-retire", "one retirement file is required")
	}
	if *urls == "" || *creds == "" || *anchorPath == "" {
		return e.usageError("city publish-retire", "--city, --city-creds and --city-anchor are required")
	}
	if *timeout < time.Second || *timeout > 10*time.Minute {
		return e.usageError("city publish-retire", "--timeout must be 1s to 10m")
	}
	cfg := citylink.Config{URLs: *urls, SeedFile: *creds, CAFile: *ca}
	if err := cfg.Check(); err != nil {
		return e.usageError("city publish-retire", "%v", err)
	}
	ab, err := readBounded(*anchorPath, pass.MaxAnchorLen)
	if err != nil {
		return e.fail(fmt.Errorf("publish retirement: %w", err))
	}
	a, err := pass.ParseAnchor(ab)
	if err != nil || len(a.Roots) != 1 {
		return e.fail(fmt.Errorf("publish retirement: %s is no city anchor file (one root): %v", *anchorPath, err))
	}
	b, err := readBounded(fs.Arg(0), pass.MaxCityRecordLen)
	if err != nil {
		return e.fail(fmt.Errorf("publish retirement: %w", err))
	}
	if _, err := citylink.CheckRetirement(a.Roots[0], b); err != nil {
		return e.fail(fmt.Errorf("publish retirement: %s: %w", fs.Arg(0), err))
	}
	nc, err := citylink.Dial(cfg, "passgate city publish-retire", citylink.ConsoleInboxPrefix)
	if err != nil {
		return e.fail(err)
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, seq, err := citylink.PublishRetirement(pctx, nc, a.Roots[0], b)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "district %s root %s retired from %s: on the city stream (sequence %d); every district hub applies it\n",
		r.District, r.Root.KID, r.RetiredAt.UTC().Format(time.RFC3339), seq)
	return exitOK
}
