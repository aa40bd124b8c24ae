// Package metrics exposes the appliance's state to Prometheus: checks by
// decision and reason, check and scan-log latency, scanner inputs, exports,
// retention, the audit trail, the database file, and the Go runtime.
//
// Everything lives in one Registry owned by Metrics (never the global
// default, so tests and two servers in one process do not share series).
// Two styles feed it: counters and histograms updated by the code that does
// the work (the check path, the scan writer, exports, retention), and
// collectors that read state when Prometheus scrapes (inputs, the audit
// head, file sizes). Later parts of the appliance add their own with
// Register, GaugeFunc or CounterFunc.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"passgate/check"
	"passgate/scanner"
	"passgate/store"
)

// namespace prefixes every passgate series.
const namespace = "passgate"

// scrapeTimeout bounds the database reads a scrape makes, so a scrape
// never hangs on a busy disk.
const scrapeTimeout = 2 * time.Second

// Config is what Metrics reads state from. DB is required; Inputs may be
// nil (no scanner inputs configured).
type Config struct {
	DB      *store.DB
	Inputs  *scanner.Inputs
	Version string       // the build's version, for passgate_build_info
	Log     *slog.Logger // where failed scrapes are reported; nil: nowhere
}

// Metrics owns the registry and the series the appliance updates. Its
// methods are safe for concurrent use; a nil *Metrics ignores every
// update, so callers need no checks of their own.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	// checks holds the pre-resolved counter of every decision and reason
	// the checker can produce: the check path does a map lookup and an
	// atomic add, never the label hashing of WithLabelValues.
	checks      map[checkKey]prometheus.Counter
	checksVec   *prometheus.CounterVec
	checkErrors prometheus.Counter
	checkTime   prometheus.Histogram

	commitSize   prometheus.Histogram
	commitTime   prometheus.Histogram
	commitErrors prometheus.Counter

	exports    *prometheus.CounterVec
	exportRows *prometheus.CounterVec
	purged     *prometheus.CounterVec
}

type checkKey struct {
	decision check.Verdict
	reason   check.Reason
}

// New builds the registry with every passgate series, the Go runtime and
// process collectors and build information. It only reads cfg.DB: whoever
// wires the appliance makes the store report its scan log group commits
// with db.ObserveScanCommits(m.ScanCommitted).
func New(cfg Config) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}

	m.checksVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "checks_total",
		Help: "Checks logged, by decision (allow, deny) and reason code.",
	}, []string{"decision", "reason"})
	m.checks = make(map[checkKey]prometheus.Counter, len(check.Reasons))
	for _, r := range check.Reasons {
		// Only "ok" allows; every other reason denies. Resolving them
		// all up front also exports zeros, so rate() works from the first
		// scrape.
		d := check.Deny
		if r == check.ReasonOK {
			d = check.Allow
		}
		m.checks[checkKey{d, r}] = m.checksVec.WithLabelValues(string(d), string(r))
	}
	m.checkErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "check_errors_total",
		Help: "Checks that failed and were not logged (the gate showed an error).",
	})
	m.checkTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "check_duration_seconds",
		Help: "Time from the start of a check until its scan record was durable.",
		// 50 µs (a check on a quiet gate) to about 0.8 s (a stalled disk).
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 15),
	})
	m.commitSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "scan_commit_batch_size",
		Help:    "Scans written per group commit of the scan log.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024, the batch cap
	})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "scan_commit_duration_seconds",
		Help:    "Time of one group commit of the scan log, from begin to durable commit (fsync).",
		Buckets: prometheus.ExponentialBuckets(100e-6, 2, 14), // 100 µs … 0.8 s
	})
	m.commitErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "scan_commit_errors_total",
		Help: "Group commits of the scan log that failed.",
	})
	m.exports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "exports_total",
		Help: "Exports run from the admin pages, by kind, format and result (done, cancelled, failed).",
	}, []string{"kind", "format", "result"})
	m.exportRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "export_rows_total",
		Help: "Rows written by completed exports, by kind.",
	}, []string{"kind"})
	m.purged = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "retention_purged_rows_total",
		Help: "Rows deleted by retention purges, by what was purged.",
	}, []string{"kind"})

	reg.MustRegister(m.checksVec, m.checkErrors, m.checkTime,
		m.commitSize, m.commitTime, m.commitErrors,
		m.exports, m.exportRows, m.purged)

	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; the labels name the running build.",
			ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		&dbCollector{db: cfg.DB},
		&syncCollector{db: cfg.DB, now: time.Now},
	)
	if cfg.Inputs != nil {
		reg.MustRegister(&inputsCollector{inputs: cfg.Inputs})
	}

	opts := promhttp.HandlerOpts{
		// One failing reading (a file that cannot be read) is reported
		// and the rest is still served.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2, // two cores: a scrape storm must not starve the gates
		Timeout:             10 * time.Second,
	}
	if cfg.Log != nil {
		opts.ErrorLog = slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)
	}
	m.handler = promhttp.HandlerFor(reg, opts)
	return m
}

// Registry is where the series live, for tests and for code that wants to
// gather them itself.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds c, a collector of another part of the appliance (district
// sync: last sync time, outbox backlog, list age). Collectors that read
// state when scraped keep the code they watch free of metrics calls.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// GaugeFunc registers a gauge named passgate_<name> whose value fn reads
// at scrape time (a queue length, the age of a list). fn runs on the
// scrape and must be quick and safe for concurrent use.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, fn))
}

// CounterFunc registers a counter named passgate_<name> read from fn at
// scrape time; fn must never go down (a total kept elsewhere).
func (m *Metrics) CounterFunc(name, help string, fn func() float64) error {
	return m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, fn))
}

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails is logged and the rest is still served: one broken
// reading must not hide the others.
func (m *Metrics) Handler() http.Handler { return m.handler }

// CheckDone counts a check; it implements check.Observer.
func (m *Metrics) CheckDone(d *check.Decision, took time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil || d == nil {
		m.checkErrors.Inc()
		return
	}
	if c, ok := m.checks[checkKey{d.Decision, d.Reason}]; ok {
		c.Inc()
	} else {
		// A reason added to the checker but not to check.Reasons:
		// still counted, through the slower labelled lookup.
		m.checksVec.WithLabelValues(string(d.Decision), string(d.Reason)).Inc()
	}
	m.checkTime.Observe(took.Seconds())
}

// ScanCommitted records one group commit of the scan log; it is a
// store.ScanCommitFunc, which the store calls on its scan writer.
func (m *Metrics) ScanCommitted(scans int, took time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.commitSize.Observe(float64(scans))
	m.commitTime.Observe(took.Seconds())
}

// ExportDone counts an export of kind in format that wrote rows rows
// (err nil), was cancelled by its client (context.Canceled) or failed.
func (m *Metrics) ExportDone(kind, format string, rows int64, err error) {
	if m == nil {
		return
	}
	result := "done"
	switch {
	case errors.Is(err, context.Canceled):
		result = "cancelled" // the download was closed
	case err != nil:
		result = "failed"
	}
	m.exports.WithLabelValues(kind, format, result).Inc()
	if err == nil {
		m.exportRows.WithLabelValues(kind).Add(float64(rows))
	}
}

// Purged counts rows of kind ("scans", "passes", "audit"; at a hub also
// "district_scans", "district_events", "sync_marks") deleted by a
// retention purge.
func (m *Metrics) Purged(kind string, rows int64) {
	if m == nil || rows <= 0 {
		return
	}
	m.purged.WithLabelValues(kind).Add(float64(rows))
}

// dbCollector reads the database's state at scrape time: the size of its
// files and the length of the audit trail.
type dbCollector struct {
	db *store.DB
}

var (
	dbSizeDesc = prometheus.NewDesc(namespace+"_db_size_bytes",
		"Size of the database files on disk, by file (db, wal).", []string{"file"}, nil)
	auditDesc = prometheus.NewDesc(namespace+"_audit_records_total",
		"Records appended to the audit trail since the appliance was set up (purged records included).", nil, nil)
)

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dbSizeDesc
	ch <- auditDesc
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range []struct{ label, path string }{{"db", c.db.Path()}, {"wal", c.db.Path() + "-wal"}} {
		var size int64
		st, err := os.Stat(f.path)
		switch {
		case err == nil:
			size = st.Size()
		case os.IsNotExist(err):
			// No WAL right after a checkpoint that truncated it: empty.
		default:
			ch <- prometheus.NewInvalidMetric(dbSizeDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(dbSizeDesc, prometheus.GaugeValue, float64(size), f.label)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	seq, _, err := c.db.AuditHead(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(auditDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(auditDesc, prometheus.CounterValue, float64(seq))
}

// inputsCollector reports the scanner inputs from their registry at
// scrape time.
type inputsCollector struct {
	inputs *scanner.Inputs
}

var (
	inputLabels        = []string{"input", "kind"}
	inputConnectedDesc = prometheus.NewDesc(namespace+"_input_connected",
		"1 if the scanner input is connected, else 0.", inputLabels, nil)
	inputAgeDesc = prometheus.NewDesc(namespace+"_input_last_read_age_seconds",
		"Seconds since the scanner input last read a complete code (absent until its first).", inputLabels, nil)
	inputReadsDesc = prometheus.NewDesc(namespace+"_input_reads_total",
		"Complete codes read by the scanner input.", inputLabels, nil)
	inputErrorsDesc = prometheus.NewDesc(namespace+"_input_errors_total",
		"Open and read errors of the scanner input.", inputLabels, nil)
)

func (c *inputsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inputConnectedDesc
	ch <- inputAgeDesc
	ch <- inputReadsDesc
	ch <- inputErrorsDesc
}

func (c *inputsCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, in := range c.inputs.List() {
		connected := 0.0
		if in.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(inputConnectedDesc, prometheus.GaugeValue, connected, in.Name, in.Kind)
		if !in.LastRead.IsZero() {
			ch <- prometheus.MustNewConstMetric(inputAgeDesc, prometheus.GaugeValue, now.Sub(in.LastRead).Seconds(), in.Name, in.Kind)
		}
		ch <- prometheus.MustNewConstMetric(inputReadsDesc, prometheus.CounterValue, float64(in.Reads), in.Name, in.Kind)
		ch <- prometheus.MustNewConstMetric(inputErrorsDesc, prometheus.CounterValue, float64(in.Errors), in.Name, in.Kind)
	}
}
