package appliance

import (
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"time"

	"passgate/districtsync"
	"passgate/store"
	"passgate/web"
)

// buildServers makes the web server and the district sync API, and the
// HTTP servers for the listeners.
func (a *Appliance) buildServers() {
	var caPEM []byte
	if a.authority != nil {
		caPEM = a.authority.CACertPEM()
	}
	a.web = web.New(web.Config{
		DB: a.db, Checker: a.checker, Log: a.log, Version: a.cfg.Version,
		Inputs: a.inputs, InputsFromFlags: a.cfg.Inputs, ValidateInput: a.manager.Validate, InputsChanged: a.notifyInputs,
		Metrics: a.metrics, MetricsAccess: a.cfg.MetricsAccess,
		ExportDir: a.cfg.DataDir, HubIdentity: a.hubCA, CAPEM: caPEM, AuditCheckpoints: a.cpPath,
		City: a.cfg.City,
	})
	// The district sync API sits beside the web routes on both listeners;
	// enrolment answers only over HTTPS (the appliance pins hubCA).
	a.syncAPI = districtsync.NewServer(districtsync.ServerConfig{DB: a.db, Log: a.log.With("component", "sync"), HubCA: a.hubCA})
	handler := withSyncAPI(a.web.Handler(), a.syncAPI.Handler())
	if a.ln != nil {
		a.srv = a.newServer(handler, slog.NewLogLogger(a.log.Handler(), slog.LevelWarn))
	}
	if a.tlsLn != nil {
		// A tablet without the CA installed fails its handshakes: a
		// setup step, not a fault worth a warning each time.
		a.tlsSrv = a.newServer(handler, slog.NewLogLogger(a.log.Handler(), slog.LevelDebug))
		a.tlsSrv.TLSConfig = a.tlsCfg
	}
}

// newServer is the HTTP server of either listener: the web routes and
// the district sync API, whose waiting pulls it answers on shutdown.
func (a *Appliance) newServer(handler http.Handler, errorLog *log.Logger) *http.Server {
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
	// answer at once instead of holding it for PollWait.
	srv.RegisterOnShutdown(a.syncAPI.Drain)
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

// newSyncer is the sync client of an enrolled appliance; nil for a
// standalone appliance, a hub, or one that syncs by bundles only.
func newSyncer(db *store.DB, log *slog.Logger) *districtsync.Syncer {
	s, err := districtsync.NewSyncer(db, log.With("component", "sync"))
	switch {
	case errors.Is(err, store.ErrNotEnrolled):
		log.Info("sync: not enrolled with a hub (standalone appliance or hub)")
		return nil
	case errors.Is(err, districtsync.ErrNoHubAddress):
		log.Info("sync: enrolled without a hub address; sync by bundles only")
		return nil
	case err != nil:
		log.Error("sync: cannot start", "err", err)
		return nil
	}
	st := s.Status()
	log.Info("sync: enrolled", "hub", st.Hub, "appliance", st.Appliance)
	return s
}
