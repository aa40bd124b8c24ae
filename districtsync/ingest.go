package districtsync

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"passgate/pass"
	"passgate/store"
)

// handlePush stores an appliance's push exactly once (store.IngestPush)
// and answers the hub's marks. A push that would leave a hole is answered
// 409 with code "gap" and the id expected; a malformed one 400; one whose
// body stopped arriving 408 (readPush); a retired appliance 403.
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	a, err := s.appliance(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.readPush(w, r, a.Name, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := ingestOf(&req)
	if err != nil {
		s.writeError(w, r, badPush(err))
		return
	}
	res, err := s.db.IngestPush(r.Context(), a.ID, in)
	var gap *store.GapError
	switch {
	case errors.As(err, &gap):
		s.log.Warn("sync push refused: gap", "appliance", a.Name, "stream", gap.Stream, "expected", gap.Expected)
		s.writeError(w, r, &CallError{Status: http.StatusConflict,
			Err: Error{Code: "gap", Message: gap.Error(), Expected: gap.Expected}})
		return
	case errors.Is(err, store.ErrRetired):
		s.writeError(w, r, errRetired)
		return
	case errors.Is(err, store.ErrNotFound):
		s.writeError(w, r, errUnauthorized)
		return
	case errors.Is(err, store.ErrInvalid):
		s.writeError(w, r, badPush(err))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	if res.SkewFlagged && skewWarnDue(s, a.ID, time.Now()) {
		// Its records keep their order (by id); their times are its
		// clock's, which the hub does not correct. The skew is also in
		// appliances.clock_skew_ms (passgate hub list, the hub's pages).
		s.log.Warn("appliance clock is off", "appliance", a.Name, "skew", res.ClockSkew.Round(time.Second))
	}
	if res.Refused > 0 {
		// Each one is in the audit trail (store.AuditRecordRefused).
		s.log.Warn("sync push: records outside the appliance's role refused", "appliance", a.Name, "role", a.Role, "refused", res.Refused)
	}
	s.log.Debug("sync push", "appliance", a.Name, "stored", res.Stored, "skipped", res.Skipped, "backlog", req.Backlog)
	resp := PushResponse{Now: time.Now().UnixMilli()}
	if req.Scans != nil {
		resp.Scans = &Mark{Epoch: req.Scans.Epoch, Mark: res.ScansMark}
	}
	if req.Events != nil {
		resp.Events = &Mark{Epoch: req.Events.Epoch, Mark: res.EventsMark}
	}
	resp.CheckpointSize = checkTrail(r.Context(), s.db, s.log, a, req.Checkpoint)
	s.writeJSON(w, r, http.StatusOK, resp)
}

// skewWarnEvery spaces the warnings about one appliance's clock: it
// pushes every second or so while it has a backlog.
const skewWarnEvery = 10 * time.Minute

// skewWarned is when each appliance's clock was last warned about, by
// server and appliance id.
var skewWarned sync.Map // skewKey → time.Time

type skewKey struct {
	s  *Server
	id int64
}

// skewWarnDue reports whether a warning about appliance id's clock is
// due from s, and if so notes it as given.
func skewWarnDue(s *Server, id int64, now time.Time) bool {
	k := skewKey{s, id}
	if last, ok := skewWarned.Load(k); ok && now.Sub(last.(time.Time)) < skewWarnEvery {
		return false
	}
	skewWarned.Store(k, now)
	return true
}

func badPush(err error) *CallError {
	return &CallError{Status: http.StatusBadRequest, Err: Error{Code: "bad_request", Message: "malformed push: " + err.Error()}}
}

// ingestOf turns a push into the store's terms, refusing what does not
// fit them: identifiers of the wrong length, more records than a batch
// may hold, or runs the store would refuse (store.CheckScanRun,
// CheckEventRun).
func ingestOf(req *PushRequest) (*store.Ingest, error) {
	in := &store.Ingest{Backlog: req.Backlog}
	if req.Now != 0 {
		in.ApplianceNow = time.UnixMilli(req.Now)
	}
	if req.Scans != nil {
		if len(req.Scans.Records) > MaxScanBatch {
			return nil, fmt.Errorf("%d scans in one push, at most %d", len(req.Scans.Records), MaxScanBatch)
		}
		run := &store.ScanRun{Epoch: req.Scans.Epoch, From: req.Scans.From, Records: make([]*store.Scan, len(req.Scans.Records))}
		// One allocation for the batch instead of one per scan: a push
		// holds up to 20,000 and the garbage collector's share of
		// ingest is a fifth.
		slab := make([]store.Scan, len(req.Scans.Records))
		for i := range req.Scans.Records {
			if err := scanOf(&slab[i], &req.Scans.Records[i]); err != nil {
				return nil, fmt.Errorf("scan %d: %w", req.Scans.Records[i].Seq, err)
			}
			run.Records[i] = &slab[i]
		}
		if err := store.CheckScanRun(run); err != nil {
			return nil, err
		}
		in.Scans = run
	}
	if req.Events != nil {
		if len(req.Events.Records) > MaxEventBatch {
			return nil, fmt.Errorf("%d events in one push, at most %d", len(req.Events.Records), MaxEventBatch)
		}
		run := &store.EventRun{Epoch: req.Events.Epoch, From: req.Events.From, Records: make([]*store.OutboxRecord, len(req.Events.Records))}
		for i, e := range req.Events.Records {
			run.Records[i] = &store.OutboxRecord{Seq: e.Seq, Kind: e.Kind, At: time.UnixMilli(e.At), Body: string(e.Body)}
		}
		if err := store.CheckEventRun(run); err != nil {
			return nil, err
		}
		in.Events = run
	}
	return in, nil
}

// scanOf converts a wire scan record into s; absent identifiers stay
// zero.
func scanOf(s *store.Scan, r *ScanRecord) error {
	*s = store.Scan{ID: r.Seq, At: time.UnixMilli(r.At), Source: r.Source, Decision: r.Decision, Reason: r.Reason, Repeat: r.Repeat}
	for _, f := range []struct {
		name     string
		dst, src []byte
	}{{"pass id", s.PassID[:], r.PassID}, {"subject", s.Subject[:], r.Subject}, {"key id", s.KID[:], r.KID}} {
		if len(f.src) == 0 {
			continue
		}
		if len(f.src) != len(f.dst) {
			return fmt.Errorf("%s of %d bytes, want %d", f.name, len(f.src), len(f.dst))
		}
		copy(f.dst, f.src)
	}
	return nil
}

// recordOf is scanOf's inverse, for the appliance: zero identifiers are
// left out, so they cost nothing on the wire.
func recordOf(s *store.Scan) ScanRecord {
	r := ScanRecord{Seq: s.ID, At: s.At.UnixMilli(), Source: s.Source, Decision: s.Decision, Reason: s.Reason, Repeat: s.Repeat}
	if s.PassID != (pass.ID{}) {
		r.PassID = s.PassID[:]
	}
	if s.Subject != (pass.Subject{}) {
		r.Subject = s.Subject[:]
	}
	if s.KID != (pass.KeyID{}) {
		r.KID = s.KID[:]
	}
	return r
}
