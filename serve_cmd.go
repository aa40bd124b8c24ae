package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/appliance"
	"passgate/citylink"
	"passgate/citystats"
	"passgate/citytrace"
	"passgate/scanner"
	"passgate/store"
	"passgate/web"
)

// cmdServe runs the appliance until it is told to stop.
func cmdServe(ctx context.Context, e *env, args []string) int {
	cfg, code, ok := e.serveConfig(args)
	if !ok {
		return code
	}
	if cfg.City != nil {
		defer cfg.City.Conn.Close()
	}
	app, err := appliance.New(ctx, cfg)
	if err != nil {
		return e.fail(err)
	}
	defer app.Close()
	fmt.Fprintf(e.stdout, "passgate: listening on http://%s (data in %s)\n", app.Addr(), cfg.DataDir)
	if a := app.TLSAddr(); a != nil {
		fmt.Fprintf(e.stdout, "passgate: listening on https://%s (tablets: install the CA from /admin/ca)\n", a)
	}
	if err := app.Run(ctx); err != nil {
		return e.fail(err)
	}
	return exitOK
}

// serveConfig reads serve's flags and environment into the appliance's
// configuration; ok is false (with the exit code) on a usage error.
func (e *env) serveConfig(args []string) (cfg appliance.Config, code int, ok bool) {
	fs, data := e.newFlags("serve", "[--data DIR] [--addr HOST:PORT]")
	addr := fs.String("addr", e.envOr("PASSGATE_ADDR", "127.0.0.1:8080"), "listen address (env PASSGATE_ADDR)")
	logLevel := fs.String("log-level", e.envOr("PASSGATE_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env PASSGATE_LOG_LEVEL)")
	tlsAddr := fs.String("tls-addr", e.envOr("PASSGATE_TLS_ADDR", ""), "HTTPS listen address for LAN tablets (the camera needs a secure context), e.g. 0.0.0.0:8443; empty: no HTTPS (env PASSGATE_TLS_ADDR)")
	tlsCert := fs.String("tls-cert", e.envOr("PASSGATE_TLS_CERT", ""), "PEM certificate (chain after it) to serve instead of one from the local CA (env PASSGATE_TLS_CERT)")
	tlsKey := fs.String("tls-key", e.envOr("PASSGATE_TLS_KEY", ""), "PEM private key of --tls-cert (env PASSGATE_TLS_KEY)")
	tlsHosts := fs.String("tls-hosts", e.envOr("PASSGATE_TLS_HOSTS", ""), "extra names or addresses the local CA's certificate covers, comma-separated (env PASSGATE_TLS_HOSTS)")
	metricsTokenFile := fs.String("metrics-token-file", e.envOr("PASSGATE_METRICS_TOKEN_FILE", ""), "file holding the bearer token a Prometheus server on the LAN sends to read /metrics (env PASSGATE_METRICS_TOKEN_FILE)")
	loopbackDefault, loopbackErr := strconv.ParseBool(e.envOr("PASSGATE_METRICS_LOOPBACK", "true"))
	metricsLoopback := fs.Bool("metrics-loopback", loopbackDefault || loopbackErr != nil, "let clients on this machine read /metrics without a token; turn off behind a local reverse proxy (env PASSGATE_METRICS_LOOPBACK)")
	cpFile := fs.String("audit-checkpoints", e.envOr("PASSGATE_AUDIT_CHECKPOINTS", ""), "file the signed checkpoints of the audit trail are appended to, for an operator to copy (default DATA/audit-checkpoints; env PASSGATE_AUDIT_CHECKPOINTS)")
	city := fs.String("city", e.envOr("PASSGATE_CITY", ""), "join the city (a district hub, or with --city-key the city console): the city cluster's NATS URLs, comma-separated, e.g. tls://city1:4222,tls://city2:4222 (env PASSGATE_CITY)")
	cityCreds := fs.String("city-creds", e.envOr("PASSGATE_CITY_CREDS", ""), "the file (mode 0600) holding this hub's, or the console's, NATS nkey seed (passgate city nats-user); the cluster holds it to its own subjects (env PASSGATE_CITY_CREDS)")
	cityCA := fs.String("city-ca", e.envOr("PASSGATE_CITY_CA", ""), "PEM CA the city cluster's TLS certificates are checked against; empty: the system's (env PASSGATE_CITY_CA)")
	// The city role: the city health commission's console.
	cityKey := fs.String("city-key", "", "the city pseudonym key file: with --city and --city-districts, this is the city console")
	cityDistricts := fs.String("city-districts", "", "every district the city console asks, comma-separated (with --city-key)")
	cityTimeout := fs.Duration("city-timeout", 10*time.Second, "how long the city console waits for the districts")
	var serials, evdevs multiFlag
	fs.Var(&serials, "serial", "a USB serial scanner: [NAME=]PATH[,baud=9600][,suffix=cr|lf|crlf]; repeat for more (env PASSGATE_SERIAL, separated by ;)")
	fs.Var(&evdevs, "evdev", "a USB keyboard-wedge scanner read through evdev with an exclusive grab: [NAME=]/dev/input/...; repeat for more (env PASSGATE_EVDEV, separated by ;)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return cfg, code, false
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return cfg, e.usageError("serve", "--tls-cert and --tls-key go together"), false
	}
	if *tlsCert != "" && *tlsAddr == "" {
		return cfg, e.usageError("serve", "--tls-cert needs --tls-addr"), false
	}
	if len(serials) == 0 {
		serials = splitEnv(e.getenv("PASSGATE_SERIAL"))
	}
	if len(evdevs) == 0 {
		evdevs = splitEnv(e.getenv("PASSGATE_EVDEV"))
	}
	inputs, code, ok := e.serveInputs(map[string][]string{"serial": serials, "evdev": evdevs})
	if !ok {
		return cfg, code, false
	}
	if loopbackErr != nil {
		return cfg, e.usageError("serve", "PASSGATE_METRICS_LOOPBACK %q is not true or false", e.getenv("PASSGATE_METRICS_LOOPBACK")), false
	}
	metricsToken, err := readMetricsToken(*metricsTokenFile)
	if err != nil {
		return cfg, e.usageError("serve", "--metrics-token-file: %v", err), false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, e.usageError("serve", "--log-level %q is not debug, info, warn or error", *logLevel), false
	}
	if *cityTimeout < time.Second || *cityTimeout > 2*time.Minute {
		return cfg, e.usageError("serve", "--city-timeout must be 1s to 2m"), false
	}
	// One way into the city: a hub's link, or (chosen by the city key
	// and the districts it asks) the console; the same flags, each with
	// its own nkey user.
	var links []appliance.Link
	var console *web.CityConsole
	cityCfg := citylink.Config{URLs: *city, SeedFile: *cityCreds, CAFile: *cityCA}
	switch {
	case *city == "" && (*cityCreds != "" || *cityCA != "" || *cityKey != "" || *cityDistricts != ""):
		return cfg, e.usageError("serve", "--city-creds, --city-ca, --city-key and --city-districts go with --city"), false
	case *city != "" && *cityCreds == "":
		return cfg, e.usageError("serve", "--city needs --city-creds"), false
	case (*cityKey == "") != (*cityDistricts == ""):
		return cfg, e.usageError("serve", "the city console needs both --city-key and --city-districts"), false
	case *cityKey != "":
		if err := cityCfg.Check(); err != nil {
			return cfg, e.usageError("serve", "%v", err), false
		}
		c, err := cityConsole(cityCfg, *cityKey, *cityDistricts, *cityTimeout)
		if err != nil {
			return cfg, e.fail(err), false
		}
		console = c
	case *city != "":
		// The hub answers the city's traces and dashboard requests on its
		// link's connection; the dashboard's figures include the link's lag.
		var l *citylink.Link
		cityCfg.Answer = citylink.Answerers(citytrace.Serve,
			func(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error {
				return citystats.Serve(ctx, nc, db, district, l.Lag)
			})
		l, err := citylink.New(cityCfg)
		if err != nil {
			return cfg, e.usageError("serve", "%v", err), false
		}
		links = append(links, l)
	}
	dir := *data
	return appliance.Config{
		City:    console,
		DataDir: dir,
		Open:    func(ctx context.Context) (*store.DB, error) { return e.openDB(ctx, dir, e.stdout) },
		KeyFile: e.sealKeyFile(),
		Log:     slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
		Version: version,
		Addr:    *addr, TLSAddr: *tlsAddr, TLSCert: *tlsCert, TLSKey: *tlsKey, TLSHosts: splitList(*tlsHosts),
		MetricsAccess:  web.MetricsAccess{Token: metricsToken, Loopback: *metricsLoopback},
		CheckpointFile: *cpFile,
		Inputs:         inputs,
		Links:          links,
	}, exitOK, true
}

// serveInputs parses the inputs given on the command line, by kind;
// each needs a name of its own.
func (e *env) serveInputs(byKind map[string][]string) (specs []scanner.InputSpec, code int, ok bool) {
	seen := map[string]bool{}
	for kind, values := range byKind {
		for _, v := range values {
			spec, err := appliance.ParseInput(kind, v)
			if err != nil {
				return nil, e.usageError("serve", "--%s %q: %v", kind, v, err), false
			}
			if seen[spec.Name] {
				return nil, e.usageError("serve", "two inputs are named %q: name them NAME=PATH", spec.Name), false
			}
			seen[spec.Name] = true
			specs = append(specs, spec)
		}
	}
	return specs, exitOK, true
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// multiFlag is a flag that may be given several times.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// splitEnv splits an environment list of input specs: specs hold commas,
// so the list is separated by semicolons.
func splitEnv(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// readMetricsToken reads the metrics bearer token from path ("" means
// none). The file holds the token alone; surrounding white space (the
// final newline an editor adds) is ignored.
func readMetricsToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Read at most 64 bytes past the longest token: room for white space
	// around it, and a file that fills the limit is too long.
	b, err := io.ReadAll(io.LimitReader(f, web.MaxMetricsToken+64))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(b) > web.MaxMetricsToken+63 || len(tok) > web.MaxMetricsToken:
		return "", fmt.Errorf("the token is longer than %d bytes", web.MaxMetricsToken)
	case len(tok) < web.MinMetricsToken:
		return "", fmt.Errorf("the token is shorter than %d bytes", web.MinMetricsToken)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f || r > '~' }):
		return "", errors.New("the token must be printable ASCII without spaces")
	}
	return tok, nil
}
