package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"passgate/check"
	"passgate/districtsync"
	"passgate/metrics"
	"passgate/scanner"
	"passgate/store"
	"passgate/tlsca"
	"passgate/web"
)

// shutdownGrace is how long in-flight requests get to finish on shutdown.
// A scan request finishes once its record is durable, so every scan that
// was acknowledged is logged.
const shutdownGrace = 10 * time.Second

func cmdServe(ctx context.Context, e *env, args []string) int {
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
	var serials, evdevs multiFlag
	fs.Var(&serials, "serial", "a USB serial scanner: [NAME=]PATH[,baud=9600][,suffix=cr|lf|crlf]; repeat for more (env PASSGATE_SERIAL, separated by ;)")
	fs.Var(&evdevs, "evdev", "a USB keyboard-wedge scanner read through evdev with an exclusive grab: [NAME=]/dev/input/...; repeat for more (env PASSGATE_EVDEV, separated by ;)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return e.usageError("serve", "--tls-cert and --tls-key go together")
	}
	if *tlsCert != "" && *tlsAddr == "" {
		return e.usageError("serve", "--tls-cert needs --tls-addr")
	}
	if len(serials) == 0 {
		serials = splitEnv(e.getenv("PASSGATE_SERIAL"))
	}
	if len(evdevs) == 0 {
		evdevs = splitEnv(e.getenv("PASSGATE_EVDEV"))
	}
	var fromFlags []scanner.InputSpec
	seen := map[string]bool{}
	for kind, values := range map[string][]string{"serial": serials, "evdev": evdevs} {
		for _, v := range values {
			spec, err := flagInput(kind, v)
			if err != nil {
				return e.usageError("serve", "--%s %q: %v", kind, v, err)
			}
			if seen[spec.Name] {
				return e.usageError("serve", "two inputs are named %q: name them NAME=PATH", spec.Name)
			}
			seen[spec.Name] = true
			fromFlags = append(fromFlags, spec)
		}
	}
	if loopbackErr != nil {
		return e.usageError("serve", "PASSGATE_METRICS_LOOPBACK %q is not true or false", e.getenv("PASSGATE_METRICS_LOOPBACK"))
	}
	metricsToken, err := readMetricsToken(*metricsTokenFile)
	if err != nil {
		return e.usageError("serve", "--metrics-token-file: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return e.usageError("serve", "--log-level %q is not debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	db, err := e.openDB(ctx, *data, e.stdout)
	if err != nil {
		return e.fail(err)
	}
	if db.Sealed() {
		log.Info("private keys are sealed with the key file", "key_file", e.sealKeyFile())
	} else {
		log.Warn("private keys are stored in clear: whoever copies the data directory has them (seal them with --key-file, PASSGATE_KEY_FILE or the systemd credential passgate-key)")
	}
	defer func() {
		// Close flushes queued scans; it runs after the server stopped.
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	// The audit trail is checked before serving: a broken one does not
	// stop the appliance, it makes it loud (log, /readyz, status page).
	cpPath := checkpointPath(*cpFile, *data)
	if _, err := db.AuditPublicKey(ctx); err != nil {
		log.Error("audit trail: signing key", "err", err)
	}
	checkAuditAtStart(ctx, db, cpPath, log)
	inputs := scanner.NewInputs()
	mx := metrics.New(metrics.Config{DB: db, Inputs: inputs, Version: version, Log: log})
	db.ObserveScanCommits(mx.ScanCommitted)
	if err := auditMetrics(mx, db); err != nil {
		return e.fail(err)
	}
	checker, err := check.New(ctx, db, check.WithObserver(mx))
	if err != nil {
		return e.fail(err)
	}

	// Listen before serving so the address is known (":0" in tests) and a
	// busy port fails here, with a clear message.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return e.fail(fmt.Errorf("listen on %s: %w", *addr, err))
	}
	manager := scanner.NewManager(inputFactories(checker, inputs, log), inputs, log)
	inputsChanged := make(chan struct{}, 1)
	notify := func() {
		select {
		case inputsChanged <- struct{}{}:
		default:
		}
	}
	// HTTPS for LAN tablets: a certificate from the appliance's own local
	// CA (made at first start, renewed before it expires or when the
	// appliance gains an address), or one the admin provides.
	tlsHostList := func() []string {
		hosts := tlsca.DefaultHosts()
		for _, h := range strings.Split(*tlsHosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		return hosts
	}
	var (
		tlsLn     net.Listener
		tlsCfg    *tls.Config
		authority *tlsca.Authority
		hubCA     []byte // what enrolled appliances pin: the local CA, or the provided leaf
	)
	if *tlsAddr != "" {
		if *tlsCert != "" {
			if tlsCfg, err = tlsca.LoadProvided(*tlsCert, *tlsKey); err == nil {
				hubCA = tlsCfg.Certificates[0].Certificate[0]
			}
		} else if authority, err = tlsca.LoadOrCreate(*data, tlsHostList(), time.Now()); err == nil {
			hubCA = authority.CACertDER()
			tlsCfg = withCAInChain(authority.TLSConfig(), hubCA)
		}
		if err != nil {
			ln.Close()
			return e.fail(fmt.Errorf("https: %w", err))
		}
		if tlsLn, err = net.Listen("tcp", *tlsAddr); err != nil {
			ln.Close()
			return e.fail(fmt.Errorf("listen on %s: %w", *tlsAddr, err))
		}
	}
	ws := web.New(db, checker, log, web.WithInputs(inputs), web.WithInputConfig(fromFlags, manager.Validate, notify),
		web.WithMetrics(mx, web.MetricsAccess{Token: metricsToken, Loopback: *metricsLoopback}), web.WithExportDir(*data),
		web.WithHubIdentity(hubCA))
	if authority != nil {
		ws.SetCA(authority.CACertPEM())
	}
	// The district sync API sits beside the web routes on both listeners;
	// enrolment answers only over HTTPS (the appliance pins hubCA).
	syncAPI := districtsync.NewServer(db, log.With("component", "sync"))
	syncAPI.SetHubCA(hubCA)
	handler := withSyncAPI(ws.Handler(), syncAPI.Handler())
	srv := newWebServer(handler, syncAPI, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	web.Version = version

	runCtx, stopRefresh := context.WithCancel(context.Background())
	defer stopRefresh()
	go checker.Run(runCtx, time.Second, func(err error) { log.Warn("refresh lists", "err", err) })
	go runRetention(runCtx, db, log, mx)
	syncDone := startSyncer(runCtx, db, log)
	// The hub's long polls and batched appliance contacts; the last
	// batch is written before the store closes.
	syncAPIDone := make(chan struct{})
	go func() {
		defer close(syncAPIDone)
		syncAPI.Run(runCtx)
	}()
	defer func() {
		stopRefresh()
		<-syncAPIDone
	}()
	auditDone := make(chan struct{})
	go func() {
		defer close(auditDone)
		runAuditCheckpoints(runCtx, db, cpPath, log)
	}()
	// The last checkpoint is written before the store closes.
	defer func() {
		stopRefresh()
		<-auditDone
	}()
	// The sync loop stops before the store closes.
	defer func() {
		stopRefresh()
		<-syncDone
	}()
	inputsDone := make(chan struct{})
	go func() {
		defer close(inputsDone)
		runInputs(runCtx, db, manager, fromFlags, inputsChanged, log)
	}()
	// Runs before the store closes (defers run last-in first-out): no
	// reader checks a scan after that.
	defer func() {
		stopRefresh()
		<-inputsDone
	}()

	fmt.Fprintf(e.stdout, "passgate: listening on http://%s (data in %s)\n", ln.Addr(), *data)
	log.Info("serving", "addr", ln.Addr().String(), "data", *data, "version", version)

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(newLimitListener(ln, maxConns, log)) }()
	var tlsSrv *http.Server
	if tlsLn != nil {
		if authority != nil {
			go authority.Maintain(runCtx, 12*time.Hour, tlsHostList, log)
		}
		// A tablet without the CA installed fails its handshakes: a
		// setup step, not a fault worth a warning each time.
		tlsSrv = newWebServer(handler, syncAPI, slog.NewLogLogger(log.Handler(), slog.LevelDebug))
		tlsSrv.TLSConfig = tlsCfg
		fmt.Fprintf(e.stdout, "passgate: listening on https://%s (tablets: install the CA from /admin/ca)\n", tlsLn.Addr())
		go func() { errc <- tlsSrv.ServeTLS(newLimitListener(tlsLn, maxTLSConns, log), "", "") }()
	}
	code := exitOK
	select {
	case err := <-errc:
		code = e.fail(fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, sv := range []*http.Server{srv, tlsSrv} {
		if sv == nil {
			continue
		}
		wg.Go(func() {
			if err := sv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("shutdown", "err", err)
			}
		})
	}
	wg.Wait()
	// Background exports stop and their files (health data) go with
	// the server, before the store closes.
	ws.Close()
	return code
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

// newWebServer is the HTTP server of both listeners: the web routes and
// the district sync API, whose waiting pulls it answers on shutdown.
func newWebServer(handler http.Handler, syncAPI *districtsync.Server, errorLog *stdlog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		// A pull waiting for a change (districtsync.PollWait, 25 s) sets
		// its own connection deadlines; these bound everything else.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  idleTimeout,
		ErrorLog:     errorLog,
	}
	// Shutdown waits for open requests: pulls waiting for a change
	// answer at once instead of holding them for PollWait.
	srv.RegisterOnShutdown(syncAPI.Drain)
	return srv
}

// withSyncAPI serves the sync paths with the hub's sync API and the rest
// with the web handler. The sync API authenticates by its own tokens, so
// it bypasses the web's sessions and CSRF checks.
func withSyncAPI(web, sync http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/sync/v1/", sync)
	mux.Handle("/", web)
	return mux
}

// withCAInChain sends the local CA after the server certificate, so an
// appliance that has only the CA's pin (from its enrolment code) finds it
// in the chain. Browsers ignore the extra certificate.
func withCAInChain(cfg *tls.Config, caDER []byte) *tls.Config {
	get := cfg.GetCertificate
	cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hi)
		if err != nil || c == nil {
			return c, err
		}
		cc := *c
		cc.Certificate = append(append([][]byte(nil), c.Certificate...), caDER)
		return &cc, nil
	}
	return cfg
}

// startSyncer runs the sync loop of an enrolled appliance until ctx
// ends; the returned channel closes when it stopped. A standalone
// appliance or a hub has none.
func startSyncer(ctx context.Context, db *store.DB, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	s, err := districtsync.NewSyncer(db, log.With("component", "sync"))
	switch {
	case errors.Is(err, store.ErrNotEnrolled):
		log.Info("sync: not enrolled with a hub (standalone appliance or hub)")
		close(done)
		return done
	case errors.Is(err, districtsync.ErrNoHubAddress):
		log.Info("sync: enrolled without a hub address; sync by bundles only")
		close(done)
		return done
	case err != nil:
		log.Error("sync: cannot start", "err", err)
		close(done)
		return done
	}
	st := s.Status()
	log.Info("sync: enrolled", "hub", st.Hub, "appliance", st.Appliance)
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return done
}
