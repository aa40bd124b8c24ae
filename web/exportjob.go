package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"passgate/export"
	"passgate/store"
)

// Limits of the background exports. An export holds a read snapshot
// (the WAL cannot be checkpointed past it) and a CPU core; the appliance
// has few of both, and the gate must stay fast, so at most two run at a
// time. A finished file is health data at rest: it is kept only until
// it is fetched, with a short grace for a repeated download, and at most
// an hour if never fetched.
const (
	maxRunningExports    = 2
	maxKeptExports       = 20 // finished files kept at once; the oldest goes first
	exportKeep           = time.Hour
	exportKeepAfterFetch = 10 * time.Minute
)

// Export job states, as the status endpoint reports them.
const (
	jobRunning   = "running"
	jobDone      = "done"
	jobFailed    = "failed"
	jobCancelled = "cancelled"
)

// errTooManyExports is returned by start when maxRunningExports are
// already running.
var errTooManyExports = errors.New("too many exports running")

// exportRunFunc is export.Run; tests substitute one that pauses.
type exportRunFunc func(ctx context.Context, db *store.DB, w io.Writer, r *export.Request, p export.Progress) (int64, error)

// exportJobs runs admins' exports in the background, each into its own
// file, so that a long export shows its progress, can be cancelled, and
// is downloaded when complete. Jobs live in memory only: a restart
// cancels them and removes their files (Close).
type exportJobs struct {
	db  *store.DB
	log *slog.Logger
	run exportRunFunc
	// onDone is told how each export ended (the metrics).
	onDone func(kind, format string, rows int64, err error)

	// How long files are kept (exportKeep, exportKeepAfterFetch); tests
	// shorten them.
	keep, keepAfterFetch time.Duration

	base  string // where the files go: the configured directory, or a new one in os.TempDir
	owned bool   // base was configured: it is ours alone and is emptied on first use

	mu     sync.Mutex
	dir    string // created on first use
	jobs   map[string]*exportJob
	closed bool
	wg     sync.WaitGroup
}

// exportJob is one background export.
type exportJob struct {
	id      string
	owner   int64 // the user who started it; nobody else sees it
	actor   store.Actor
	req     *export.Request
	name    string // the download's file name
	path    string
	started time.Time
	cancel  context.CancelFunc

	done, total atomic.Int64

	// Guarded by exportJobs.mu.
	state    string
	rows     int64
	finished time.Time   // zero while the worker runs
	expiry   *time.Timer // removes the job and its file
}

func newExportJobs(db *store.DB, log *slog.Logger) *exportJobs {
	return &exportJobs{
		db: db, log: log, run: export.Run, jobs: map[string]*exportJob{},
		keep: exportKeep, keepAfterFetch: exportKeepAfterFetch,
	}
}

// prepare creates the files' directory; called with mu held.
func (js *exportJobs) prepare() error {
	if js.dir != "" {
		return nil
	}
	if js.owned {
		if err := os.RemoveAll(js.base); err != nil {
			return err
		}
		if err := os.MkdirAll(js.base, 0o700); err != nil {
			return err
		}
		js.dir = js.base
		return nil
	}
	d, err := os.MkdirTemp(js.base, "passgate-exports-")
	if err != nil {
		return err
	}
	js.dir = d
	return nil
}

// start validates nothing (the handler has) and starts r for user u in
// the background; it returns the job, or errTooManyExports.
func (js *exportJobs) start(u *store.User, r *export.Request, name string) (*exportJob, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return nil, errors.New("shutting down")
	}
	// A cancelled job counts until its worker has stopped: it still
	// holds its snapshot.
	running := 0
	for _, j := range js.jobs {
		if j.finished.IsZero() {
			running++
		}
	}
	if running >= maxRunningExports {
		return nil, errTooManyExports
	}
	// Bound the disk the files take however many exports are started
	// within an hour: the oldest finished one makes room.
	if len(js.jobs) >= maxKeptExports {
		var oldest *exportJob
		for _, j := range js.jobs {
			if !j.finished.IsZero() && (oldest == nil || j.started.Before(oldest.started)) {
				oldest = j
			}
		}
		if oldest != nil {
			js.forget(oldest)
		}
	}
	if err := js.prepare(); err != nil {
		return nil, fmt.Errorf("export directory: %w", err)
	}
	// An unguessable id (130 random bits): the owner check is what
	// protects a job; the id keeps anyone from enumerating them.
	id := rand.Text()
	f, err := os.OpenFile(filepath.Join(js.dir, id+".part"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export file: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &exportJob{
		id: id, owner: u.ID, actor: u.Actor(), req: r, name: name, path: f.Name(),
		started: time.Now(), cancel: cancel, state: jobRunning,
	}
	// On record before the first row is read: an export that never
	// finishes was still started by someone.
	if err := export.AuditStart(ctx, js.db, j.actor, j.req, "web"); err != nil {
		cancel()
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("audit export start: %w", err)
	}
	js.jobs[id] = j
	js.wg.Add(1)
	go js.work(ctx, j, f)
	return j, nil
}

// work runs j into f and records the outcome.
func (js *exportJobs) work(ctx context.Context, j *exportJob, f *os.File) {
	defer js.wg.Done()
	defer j.cancel()
	n, err := js.run(ctx, js.db, f, j.req, func(done, total int64) {
		j.total.Store(total)
		j.done.Store(done)
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	js.onDone(string(j.req.Kind), string(j.req.Format), n, err)
	took := time.Since(j.started).Round(time.Millisecond)
	if err == nil {
		// Every export that produced a file is in the audit trail, the
		// audit trail's own included, before the file can be fetched. A
		// cancel arriving meanwhile still discards the file; the record
		// then names an export nobody downloaded, which errs on the side
		// of recording.
		if aerr := export.Audit(context.WithoutCancel(ctx), js.db, j.actor, j.req, n); aerr != nil {
			js.log.Error("audit export", "err", aerr)
		}
		js.log.Info("export", "by", j.actor, "kind", j.req.Kind, "format", j.req.Format,
			"from", j.req.From.Format(time.RFC3339), "to", j.req.To.Format(time.RFC3339),
			"source", j.req.Source, "decision", j.req.Decision, "reason", j.req.Reason, "rows", n, "took", took)
	}

	js.mu.Lock()
	defer js.mu.Unlock()
	j.finished, j.rows = time.Now(), n
	switch {
	case err == nil && j.state == jobRunning:
		j.state = jobDone
		j.expiry = time.AfterFunc(js.keep, func() { js.remove(j.id) })
		return
	case j.state == jobCancelled || errors.Is(err, context.Canceled):
		j.state = jobCancelled
		js.log.Info("export cancelled", "file", j.name, "rows", n, "by", j.actor)
	default:
		j.state = jobFailed
		js.log.Error("export failed", "file", j.name, "rows", n, "by", j.actor, "err", err)
	}
	os.Remove(j.path)
	// A cancelled or failed job stays visible a while so its page can
	// say so, then goes.
	j.expiry = time.AfterFunc(js.keepAfterFetch, func() { js.remove(j.id) })
}

// get returns u's job id, or nil: a job of another user is as absent as
// one that never existed.
func (js *exportJobs) get(u *store.User, id string) *exportJob {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.jobs[id]
	if j == nil || u == nil || j.owner != u.ID {
		return nil
	}
	return j
}

// list returns u's jobs, newest first.
func (js *exportJobs) list(u *store.User) []*exportJob {
	js.mu.Lock()
	defer js.mu.Unlock()
	var out []*exportJob
	for _, j := range js.jobs {
		if u != nil && j.owner == u.ID {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b *exportJob) int { return b.started.Compare(a.started) })
	return out
}

// jobStatus is a job's state at one moment.
type jobStatus struct {
	State       string
	Done, Total int64
	Rows        int64
}

func (js *exportJobs) status(j *exportJob) jobStatus {
	js.mu.Lock()
	defer js.mu.Unlock()
	st := jobStatus{State: j.state, Done: j.done.Load(), Total: j.total.Load(), Rows: j.rows}
	if st.State == jobRunning {
		st.Rows = st.Done
	}
	return st
}

// cancel stops a running job, or discards a finished one's file; either
// way the file is gone once the worker has stopped writing it.
func (js *exportJobs) cancel(j *exportJob) {
	js.mu.Lock()
	defer js.mu.Unlock()
	switch j.state {
	case jobRunning:
		j.state = jobCancelled // the worker removes the file
		j.cancel()
	case jobDone:
		j.state = jobCancelled
		os.Remove(j.path)
		if j.expiry != nil {
			j.expiry.Reset(js.keepAfterFetch)
		}
	}
}

// open opens a finished job's file for download and shortens its life:
// it is removed exportKeepAfterFetch later.
func (js *exportJobs) open(j *exportJob) (*os.File, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if j.state != jobDone {
		return nil, os.ErrNotExist
	}
	f, err := os.Open(j.path)
	if err != nil {
		return nil, err
	}
	if j.expiry != nil && time.Until(j.finished.Add(js.keep)) > js.keepAfterFetch {
		j.expiry.Reset(js.keepAfterFetch)
	}
	return f, nil
}

// remove forgets a finished job and removes its file.
func (js *exportJobs) remove(id string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if j := js.jobs[id]; j != nil && !j.finished.IsZero() {
		js.forget(j)
	}
}

// forget drops a finished job and its file; called with mu held.
func (js *exportJobs) forget(j *exportJob) {
	if j.expiry != nil {
		j.expiry.Stop()
	}
	delete(js.jobs, j.id)
	os.Remove(j.path)
}

// close cancels every running job, waits for them and removes every
// file. Starting a job afterwards fails.
func (js *exportJobs) close() {
	js.mu.Lock()
	js.closed = true
	for _, j := range js.jobs {
		if j.state == jobRunning {
			j.state = jobCancelled
			j.cancel()
		}
	}
	js.mu.Unlock()
	js.wg.Wait()
	js.mu.Lock()
	defer js.mu.Unlock()
	for id, j := range js.jobs {
		if j.expiry != nil {
			j.expiry.Stop()
		}
		delete(js.jobs, id)
	}
	if js.dir != "" {
		if err := os.RemoveAll(js.dir); err != nil {
			js.log.Error("remove export files", "dir", js.dir, "err", err)
		}
	}
}

// Close stops the server's background work: running exports are
// cancelled and every export file is removed. Call it after the HTTP
// server has shut down.
func (s *Server) Close() {
	s.exports.close()
}
