// Package appliance wires a running passgate: it opens the store, builds
// the check pipeline, the web server and the sync API, the device inputs,
// the sync client and HTTPS, runs their background loops together and
// stops them in one order. `passgate serve` and `passgate bench` both run
// it, so a measurement measures what a gate runs.
package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"passgate/check"
	"passgate/districtsync"
	"passgate/metrics"
	"passgate/scanner"
	"passgate/store"
	"passgate/tlsca"
	"passgate/web"
)

// ShutdownGrace is how long in-flight requests get to finish on shutdown.
// A scan request finishes once its record is durable, so every scan that
// was acknowledged is logged.
const ShutdownGrace = 10 * time.Second

// Config is everything an appliance is built from. Only DataDir and Open
// are required.
type Config struct {
	// City is the city health commission's console (serve --city-nats);
	// nil: none.
	City *web.CityConsole
	// DataDir is the data directory: the database, the local CA, the
	// default checkpoint file and background export files.
	DataDir string
	// Open opens the store in DataDir (with its seal key, setting up a
	// district on first use); the appliance closes it.
	Open func(ctx context.Context) (*store.DB, error)
	// KeyFile names the key file sealing the private keys, for the log
	// line saying whether they are sealed.
	KeyFile string
	// Log receives the appliance's log; nil discards it.
	Log *slog.Logger
	// Version is the build's version, shown on pages and in metrics.
	Version string

	// Addr is the HTTP listen address; empty: no HTTP listener (the
	// checker is used in process).
	Addr string
	// TLSAddr is the HTTPS listen address; empty: no HTTPS.
	TLSAddr string
	// TLSCert and TLSKey name a provided PEM certificate and key served
	// instead of one from the local CA.
	TLSCert, TLSKey string
	// TLSHosts are extra names or addresses the local CA's certificate
	// covers.
	TLSHosts []string

	// NoMetrics leaves checks and commits uncounted (bench measures the
	// cost of counting with it).
	NoMetrics bool
	// MetricsAccess says who may read /metrics.
	MetricsAccess web.MetricsAccess
	// CheckpointFile is where signed audit checkpoints are appended;
	// empty: DATA/audit-checkpoints.
	CheckpointFile string
	// Inputs are the scanner inputs given on the command line (see
	// ParseInput); admins add more on the inputs page.
	Inputs []scanner.InputSpec
	// Links are loops run beside the appliance's own until it closes,
	// never on the check path (a hub's link to the city). One that is a
	// prometheus.Collector is shown in /metrics.
	Links []Link
}

// Link is a background loop given the appliance's store: it runs until
// ctx ends and handles its own failures.
type Link interface {
	Run(ctx context.Context, db *store.DB, log *slog.Logger)
}

// Appliance is a built appliance: New makes it, Run runs it, Close stops
// it.
type Appliance struct {
	cfg     Config
	log     *slog.Logger
	db      *store.DB
	metrics *metrics.Metrics
	checker *check.Checker
	inputs  *scanner.Inputs
	manager *scanner.Manager
	web     *web.Server
	syncer  *districtsync.Syncer // nil: not enrolled with a hub that has an address
	syncAPI *districtsync.Server // the hub's side of district sync
	cpPath  string

	authority *tlsca.Authority // nil: no HTTPS, or a provided certificate
	tlsCfg    *tls.Config
	hubCA     []byte // what enrolled appliances pin: the local CA, or the provided leaf
	ln, tlsLn net.Listener
	srv       *http.Server
	tlsSrv    *http.Server

	inputsChanged chan struct{}

	// loops is the context of the background loops: Close ends it only
	// after the servers stopped, so no request finds a loop gone.
	loops     context.Context
	stopLoops context.CancelFunc
	group     *errgroup.Group // nil until Run
	closeOnce sync.Once
	closeErr  error
}

// New opens the store and builds the appliance. It listens on the
// configured addresses before returning, so the addresses are known
// (":0" in tests) and a busy port fails here with a clear message.
func New(ctx context.Context, cfg Config) (*Appliance, error) {
	a := &Appliance{cfg: cfg, log: cfg.Log, inputsChanged: make(chan struct{}, 1)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.loops, a.stopLoops = context.WithCancel(context.Background())
	db, err := cfg.Open(ctx)
	if err != nil {
		return nil, err
	}
	a.db = db
	if err := a.build(ctx); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// build makes the parts in the order they depend on each other.
func (a *Appliance) build(ctx context.Context) error {
	if a.db.Sealed() {
		a.log.Info("private keys are sealed with the key file", "key_file", a.cfg.KeyFile)
	} else {
		a.log.Warn("private keys are stored in clear: whoever copies the data directory has them (seal them with --key-file, PASSGATE_KEY_FILE or the systemd credential passgate-key)")
	}
	// The audit trail is checked before serving: a broken one does not
	// stop the appliance, it makes it loud (log, /readyz, status page).
	a.cpPath = CheckpointPath(a.cfg.CheckpointFile, a.cfg.DataDir)
	if _, err := a.db.AuditPublicKey(ctx); err != nil {
		a.log.Error("audit trail: signing key", "err", err)
	}
	checkAuditAtStart(ctx, a.db, a.cpPath, a.log)
	a.inputs = scanner.NewInputs()
	checkerCfg := check.Config{DB: a.db}
	if !a.cfg.NoMetrics {
		a.metrics = metrics.New(metrics.Config{DB: a.db, Inputs: a.inputs, Version: a.cfg.Version, Log: a.log})
		if err := auditMetrics(a.metrics, a.db); err != nil {
			return err
		}
		a.db.ObserveScanCommits(a.metrics.ScanCommitted)
		for _, l := range a.cfg.Links {
			if c, ok := l.(prometheus.Collector); ok {
				if err := a.metrics.Register(c); err != nil {
					return err
				}
			}
		}
		checkerCfg.Observer = a.metrics
	}
	checker, err := check.New(ctx, checkerCfg)
	if err != nil {
		return err
	}
	a.checker = checker
	// This process syncs (online or by bundles): its epoch starts before
	// the gate logs its first scan, so nothing it logs can be taken for
	// records of a timeline the hub already holds.
	if err := a.db.StartSyncing(ctx); err != nil {
		return err
	}
	a.manager = scanner.NewManager(inputFactories(checker, a.inputs, a.log), a.inputs, a.log)
	if err := a.listen(); err != nil {
		return err
	}
	a.buildServers()
	a.syncer = newSyncer(a.db, a.log)
	return nil
}

// listen opens the listeners, and for HTTPS loads or makes the
// certificate.
func (a *Appliance) listen() error {
	if a.cfg.Addr != "" {
		ln, err := net.Listen("tcp", a.cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
		}
		a.ln = ln
	}
	if a.cfg.TLSAddr == "" {
		return nil
	}
	var err error
	if a.tlsCfg, a.hubCA, err = a.tlsConfig(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.TLSAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.TLSAddr, err)
	}
	a.tlsLn = ln
	return nil
}

// tlsConfig is the HTTPS configuration for LAN tablets: a certificate
// from the appliance's own local CA (made at first start, renewed before
// it expires or when the appliance gains an address), or one the admin
// provides. hubCA is what enrolled appliances pin: the local CA, or the
// provided leaf.
func (a *Appliance) tlsConfig() (cfg *tls.Config, hubCA []byte, err error) {
	if a.cfg.TLSCert != "" {
		if cfg, err = tlsca.LoadProvided(a.cfg.TLSCert, a.cfg.TLSKey); err != nil {
			return nil, nil, fmt.Errorf("https: %w", err)
		}
		return cfg, cfg.Certificates[0].Certificate[0], nil
	}
	if a.authority, err = tlsca.LoadOrCreate(a.cfg.DataDir, a.tlsHosts(), time.Now()); err != nil {
		return nil, nil, fmt.Errorf("https: %w", err)
	}
	hubCA = a.authority.CACertDER()
	return withCAInChain(a.authority.TLSConfig(), hubCA), hubCA, nil
}

// tlsHosts are the names the local CA's certificate covers.
func (a *Appliance) tlsHosts() []string {
	return append(tlsca.DefaultHosts(), a.cfg.TLSHosts...)
}

// notifyInputs wakes the inputs loop after an admin changed the inputs.
func (a *Appliance) notifyInputs() {
	select {
	case a.inputsChanged <- struct{}{}:
	default:
	}
}

// Run runs the background loops (list refresh, retention, audit
// checkpoints, sync, inputs, certificate upkeep) and the servers until
// ctx ends or a server fails; then it returns, and Close stops
// everything in order.
func (a *Appliance) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(a.loops)
	a.group = g
	g.Go(func() error {
		a.checker.Run(gctx, time.Second, func(err error) { a.log.Warn("refresh lists", "err", err) })
		return nil
	})
	g.Go(func() error { runRetention(gctx, a.db, a.log, a.metrics); return nil })
	g.Go(func() error { runAuditCheckpoints(gctx, a.db, a.cpPath, a.log); return nil })
	g.Go(func() error { runInputs(gctx, a.db, a.manager, a.cfg.Inputs, a.inputsChanged, a.log); return nil })
	if a.syncer != nil {
		g.Go(func() error { a.syncer.Run(gctx); return nil })
	}
	for _, l := range a.cfg.Links {
		g.Go(func() error { l.Run(gctx, a.db, a.log); return nil })
	}
	// The hub's long polls and batched appliance contacts; Close waits
	// for the last batch before the store closes.
	g.Go(func() error { a.syncAPI.Run(gctx); return nil })
	if a.authority != nil {
		g.Go(func() error { a.authority.Maintain(gctx, 12*time.Hour, a.tlsHosts, a.log); return nil })
	}
	a.serve(g)
	select {
	case <-ctx.Done():
		return nil
	case <-gctx.Done():
		return context.Cause(gctx)
	}
}

// serve starts the servers in g; a server that fails ends the group.
func (a *Appliance) serve(g *errgroup.Group) {
	if a.srv != nil {
		a.log.Info("serving", "addr", a.ln.Addr().String(), "data", a.cfg.DataDir, "version", a.cfg.Version)
		g.Go(func() error { return serveErr(a.srv.Serve(newLimitListener(a.ln, maxConns, a.log))) })
	}
	if a.tlsSrv != nil {
		g.Go(func() error {
			return serveErr(a.tlsSrv.ServeTLS(newLimitListener(a.tlsLn, maxTLSConns, a.log), "", ""))
		})
	}
}

// serveErr is a server's end as an error: none when it was shut down.
func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve: %w", err)
}

// Close stops the appliance, in this order: the servers (in-flight
// requests get ShutdownGrace), background exports (their files hold
// health data), the background loops (inputs stop reading, sync stops,
// the last audit checkpoint is written), and last the store, which
// flushes queued scans. It may be called more than once.
func (a *Appliance) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *Appliance) close() error {
	a.log.Info("shutting down")
	a.shutdownServers()
	if a.web != nil {
		a.web.Close()
	}
	a.stopLoops()
	if a.group != nil {
		_ = a.group.Wait() // a server's failure was returned by Run
	} else if a.manager != nil {
		a.manager.Stop()
	}
	if a.checker != nil {
		a.checker.Close()
	}
	if a.db == nil {
		return nil
	}
	if err := a.db.Close(); err != nil {
		a.log.Error("close database", "err", err)
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// shutdownServers stops both servers at once, giving in-flight requests
// ShutdownGrace; listeners never served are closed.
func (a *Appliance) shutdownServers() {
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, sv := range []*http.Server{a.srv, a.tlsSrv} {
		if sv == nil {
			continue
		}
		wg.Go(func() {
			if err := sv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("shutdown", "err", err)
			}
		})
	}
	wg.Wait()
	for _, ln := range []net.Listener{a.ln, a.tlsLn} {
		if ln != nil && a.group == nil {
			ln.Close()
		}
	}
}

// Addr is the HTTP listener's address; nil without one.
func (a *Appliance) Addr() net.Addr { return listenerAddr(a.ln) }

// TLSAddr is the HTTPS listener's address; nil without one.
func (a *Appliance) TLSAddr() net.Addr { return listenerAddr(a.tlsLn) }

func listenerAddr(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// DB is the appliance's store (bench counts its logged scans).
func (a *Appliance) DB() *store.DB { return a.db }

// Checker is the appliance's check pipeline (bench checks in process).
func (a *Appliance) Checker() *check.Checker { return a.checker }
