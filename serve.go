package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"passgate/scanner"
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
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
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
	defer func() {
		// Close flushes queued scans; it runs after the server stopped.
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	checker, err := scanner.New(ctx, db)
	if err != nil {
		return e.fail(err)
	}

	// Listen before serving so the address is known (":0" in tests) and a
	// busy port fails here, with a clear message.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return e.fail(fmt.Errorf("listen on %s: %w", *addr, err))
	}
	srv := &http.Server{
		Handler:           web.New(db, checker, log).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	web.Version = version

	runCtx, stopRefresh := context.WithCancel(context.Background())
	defer stopRefresh()
	go checker.Run(runCtx, time.Second, func(err error) { log.Warn("refresh lists", "err", err) })

	fmt.Fprintf(e.stdout, "passgate: listening on http://%s (data in %s)\n", ln.Addr(), *data)
	log.Info("serving", "addr", ln.Addr().String(), "data", *data, "version", version)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return e.fail(fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
	}
	stopRefresh()
	return exitOK
}
