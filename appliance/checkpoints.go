package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"passgate/metrics"
	"passgate/store"
)

// The appliance's checkpoint file: signed checkpoints of its audit trail
// (store/checkpoint.go), newest last, separated by blank lines. An
// operator copies it off the appliance now and then; `passgate audit
// verify --checkpoint COPY` then proves the trail still extends every
// checkpoint in the copy.

// CheckpointFileName is the file's name in the data directory unless
// --audit-checkpoints (PASSGATE_AUDIT_CHECKPOINTS) puts it elsewhere,
// say on a disk the database is not on.
const CheckpointFileName = "audit-checkpoints"

// maxCheckpointsKept is how many checkpoints the file keeps, newest last.
const maxCheckpointsKept = store.MaxCheckpointsKept

// Timing of the checkpoints serve writes, and of its re-checks of the
// whole trail. Neither runs on the scan path: a checkpoint reads a few
// tree hashes, a re-check one read transaction.
const (
	checkpointEvery  = 5 * time.Minute
	auditVerifyEvery = 6 * time.Hour
)

// ReadCheckpointFile returns the signed checkpoints in path, oldest
// first; none if the file does not exist.
func ReadCheckpointFile(path string) ([][]byte, error) { return store.ReadCheckpointFile(path) }

// CheckpointText parses a signed checkpoint's text without checking its
// signature: for the appliance's own file, to know what it wrote last.
// Proof against a forger is `audit verify --key`.
func CheckpointText(signed []byte) (*store.Checkpoint, error) {
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("checkpoint: %w: no signature", store.ErrInvalid)
	}
	return store.ParseCheckpoint(string(text) + "\n")
}

// WriteCheckpoint signs a checkpoint of the trail and appends it to the
// file at path, rewritten whole and synced (writeFileAtomic): a power
// cut leaves the old file or the new one. The trail must extend the
// newest checkpoint already there, or nothing is signed (the trail was
// rewritten or the database restored: see checkRestore). It reports
// whether the file changed: an unchanged trail adds nothing.
func WriteCheckpoint(ctx context.Context, db *store.DB, path string) (*store.Checkpoint, bool, error) {
	notes, err := ReadCheckpointFile(path)
	if err != nil {
		return nil, false, err
	}
	var prev *store.Checkpoint
	if len(notes) > 0 {
		if prev, err = CheckpointText(notes[len(notes)-1]); err != nil {
			return nil, false, fmt.Errorf("newest checkpoint in %s: %w", path, err)
		}
	}
	signed, cp, err := db.SignCheckpoint(ctx, prev)
	if err != nil {
		return nil, false, err
	}
	if prev != nil && prev.Size == cp.Size && prev.Root == cp.Root && prev.Origin == cp.Origin {
		return cp, false, nil
	}
	notes = append(notes, signed)
	if len(notes) > maxCheckpointsKept {
		notes = notes[len(notes)-maxCheckpointsKept:]
	}
	err = WriteFileAtomic(path, func(w io.Writer) error {
		for i, n := range notes {
			if i > 0 {
				if _, err := io.WriteString(w, "\n"); err != nil {
					return err
				}
			}
			if _, err := w.Write(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return cp, true, nil
}

// checkAuditAtStart verifies the whole trail against the newest
// checkpoint in the file. A trail shorter than that checkpoint but
// otherwise intact is a database restored from an older copy (or rolled
// back): it is audited, the old file is kept beside as
// audit-checkpoints.before-restore-<time> and the warning stays up until
// the next restart. Anything else wrong only warns, loudly: the
// appliance keeps checking passes.
func checkAuditAtStart(ctx context.Context, db *store.DB, path string, log *slog.Logger) {
	start := time.Now()
	notes, err := ReadCheckpointFile(path)
	if err != nil {
		log.Error("audit trail: checkpoint file unreadable", "err", err)
	}
	var cps []*store.Checkpoint
	if len(notes) > 0 {
		cp, err := CheckpointText(notes[len(notes)-1])
		if err != nil {
			log.Error("audit trail: newest checkpoint unreadable", "file", path, "err", err)
		} else {
			cps = append(cps, cp)
		}
	}
	v, err := db.VerifyAuditTrail(ctx, cps)
	var broken *store.AuditError
	switch {
	case errors.As(err, &broken) && len(cps) == 1 && v.Size < cps[0].Size:
		// Shorter than the checkpoint: a rollback if the rest holds.
		if _, err2 := db.VerifyAuditTrail(ctx, nil); err2 != nil {
			log.Error("AUDIT TRAIL BROKEN", "err", err2)
			return
		}
		aside := path + ".before-restore-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := os.Rename(path, aside); err != nil {
			log.Error("audit trail: cannot set the old checkpoints aside", "err", err)
		}
		rerr := db.Audit(ctx, &store.AuditRecord{Actor: "system", Action: store.AuditRestoreDetected, Subject: "audit",
			Detail: store.AuditDetail(map[string]any{"checkpoint_size": cps[0].Size, "trail_size": v.Size, "old_checkpoints": aside})})
		if rerr != nil {
			log.Error("audit trail: record the restore", "err", rerr)
		}
		db.NoteAuditWarning(fmt.Sprintf("database restored or rolled back: the trail has %d records, its checkpoint had %d (old checkpoints kept in %s)",
			v.Size, cps[0].Size, aside))
		log.Error("AUDIT TRAIL ROLLED BACK: the database is older than its newest checkpoint (restored from a backup?)",
			"trail", v.Size, "checkpoint", cps[0].Size, "old_checkpoints", aside)
	case errors.As(err, &broken):
		log.Error("AUDIT TRAIL BROKEN: the audit trail was tampered with; checking continues", "err", broken.Error())
		return
	case err != nil:
		log.Error("audit trail: verify", "err", err)
		return
	default:
		log.Info("audit trail intact", "records", v.Records, "size", v.Size, "took", time.Since(start).Round(time.Millisecond))
	}
	if _, _, err := WriteCheckpoint(ctx, db, path); err != nil {
		log.Error("audit trail: checkpoint", "err", err)
	}
}

// runAuditCheckpoints writes a checkpoint every checkpointEvery and
// re-verifies the trail every auditVerifyEvery until ctx ends, then
// writes a last checkpoint (the caller closes the store after).
func runAuditCheckpoints(ctx context.Context, db *store.DB, path string, log *slog.Logger) {
	cp := time.NewTicker(checkpointEvery)
	defer cp.Stop()
	vf := time.NewTicker(auditVerifyEvery)
	defer vf.Stop()
	for {
		select {
		case <-ctx.Done():
			// At shutdown, with a fresh context: ctx is already done.
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, _, err := WriteCheckpoint(sctx, db, path); err != nil {
				log.Error("audit trail: checkpoint at shutdown", "err", err)
			}
			cancel()
			return
		case <-cp.C:
			if _, _, err := WriteCheckpoint(ctx, db, path); err != nil && ctx.Err() == nil {
				log.Error("audit trail: checkpoint", "err", err)
			}
		case <-vf.C:
			if _, err := db.VerifyAudit(ctx); err != nil && ctx.Err() == nil {
				log.Error("AUDIT TRAIL BROKEN", "err", err)
			}
		}
	}
}

// CheckpointPath is where the checkpoint file goes: flag, else env, else
// the data directory.
func CheckpointPath(flagValue, dataDir string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(dataDir, CheckpointFileName)
}

// auditMetrics exports the audit trail's state for alerting: whether
// this appliance's own trail is broken, and on a hub how many alarms it
// raised about its appliances' trails.
func auditMetrics(mx *metrics.Metrics, db *store.DB) error {
	err := mx.GaugeFunc("audit_trail_broken", "1 when the newest check found this appliance's audit trail broken.", func() float64 {
		if st := db.AuditState(); st != nil && st.Broken != "" {
			return 1
		}
		return 0
	})
	if err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	err = mx.CounterFunc("audit_alarms_total", "Alarms raised about enrolled appliances' audit trails (rewrites, rollbacks, bad signatures).", func() float64 {
		n, err := db.CountCheckpointAlarms(context.Background())
		if err != nil {
			return 0
		}
		return float64(n)
	})
	if err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	return nil
}
