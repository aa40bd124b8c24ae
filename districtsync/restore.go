package districtsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"passgate/store"
)

// A hub restored from a backup takes back from its appliances the
// revocations it made after the backup (store/revrestore.go says which).
// An appliance that read a new generation of the feed to its end hands
// back, in calls of at most store.MaxRestoreBatch, the revocations it
// stored from the feed that the feed no longer carries, each with the
// hub's tag; the hub checks every tag and takes back only its own.

// PathRestore is where an appliance hands revocations back to its hub.
const PathRestore = "/sync/v1/restore"

// Bounds on a hand-back's body: MaxRestoreBatch records of at most about
// 800 bytes of JSON each, with room to spare.
const (
	maxRestoreWire  = 1 << 20
	maxRestorePlain = 2 << 20
)

// RestoreRequest hands back revocations of the hub's feed that the hub no
// longer carries. Generation is the feed generation the appliance read
// to its end before finding them: the hub refuses a request from another
// one (the appliance has not read its current feed).
type RestoreRequest struct {
	Now         int64              `json:"now_ms"`
	Generation  []byte             `json:"generation"`
	Revocations []RevocationRecord `json:"revocations"`
}

// RestoreResponse is what the hub made of them: how many it took back,
// already held or found superseded, how many it refused, and the
// identities the appliance need not hand back again (superseded, or
// refused for what they are).
type RestoreResponse struct {
	Restored   int     `json:"restored"`
	Held       int     `json:"held"`
	Superseded int     `json:"superseded"`
	Refused    int     `json:"refused"`
	Dropped    []int64 `json:"dropped,omitempty"`
	Now        int64   `json:"now_ms"`
}

// errRestoreGeneration answers a hand-back made in another generation
// than the hub's.
var errRestoreGeneration = &CallError{Status: http.StatusConflict,
	Err: Error{Code: "generation", Message: "read the hub's current feed to its end first"}}

// handleRestore takes back the revocations an enrolled appliance hands
// back (store.RestoreRevocations), after the appliance is known and only
// within the body's bounds. A malformed request is refused whole and
// audited; each record refused is audited by the store.
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	a, err := s.appliance(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, recs, err := readRestore(r)
	if err != nil {
		if aerr := s.db.RefuseRestore(r.Context(), a.Name, store.RefuseRestoreRequest, err.Error()); aerr != nil {
			s.log.Error("sync restore: audit refusal", "err", aerr)
		}
		s.log.Warn("sync restore refused: malformed request", "appliance", a.Name, "err", err)
		s.writeError(w, r, err)
		return
	}
	gen, _, err := s.db.FeedGeneration(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !bytes.Equal(gen, req.Generation) {
		s.writeError(w, r, errRestoreGeneration)
		return
	}
	res, err := s.db.RestoreRevocations(r.Context(), a.Name, recs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	refused := 0
	for _, n := range res.Refused {
		refused += n
	}
	if res.Restored > 0 {
		s.log.Warn("sync restore: revocations lost by the hub taken back from an appliance", "appliance", a.Name,
			"restored", res.Restored, "held", res.Held, "superseded", res.Superseded)
	}
	if refused > 0 {
		// Each request with refusals is in the audit trail.
		s.log.Warn("sync restore: revocations refused", "appliance", a.Name, "refused", refused, "why", res.Refused)
	}
	s.writeJSON(w, r, http.StatusOK, RestoreResponse{Restored: res.Restored, Held: res.Held, Superseded: res.Superseded,
		Refused: refused, Dropped: res.Dropped, Now: time.Now().UnixMilli()})
}

// readRestore reads a hand-back within its bounds and turns it into the
// store's terms; the store judges each record (store.CheckRestoreRecord).
func readRestore(r *http.Request) (*RestoreRequest, []*store.Revocation, error) {
	var req RestoreRequest
	if err := readBodyLimits(r.Body, r.Header.Get("Content-Encoding"), &req, maxRestoreWire, maxRestorePlain); err != nil {
		return nil, nil, readRequestError(err)
	}
	recs, err := restoreRecordsOf(&req)
	if err != nil {
		return nil, nil, badRequest(err.Error())
	}
	return &req, recs, nil
}

// restoreRecordsOf converts a hand-back's records, refusing a request
// that holds none, more than a call may, or a generation of the wrong
// size.
func restoreRecordsOf(req *RestoreRequest) ([]*store.Revocation, error) {
	switch {
	case len(req.Generation) != store.GenerationSize:
		return nil, fmt.Errorf("generation of %d bytes", len(req.Generation))
	case len(req.Revocations) == 0:
		return nil, errors.New("no revocations")
	case len(req.Revocations) > store.MaxRestoreBatch:
		return nil, fmt.Errorf("%d revocations in one call, at most %d", len(req.Revocations), store.MaxRestoreBatch)
	}
	recs := make([]*store.Revocation, len(req.Revocations))
	for i := range req.Revocations {
		recs[i] = RevocationFromWire(&req.Revocations[i])
	}
	return recs, nil
}

// ReturnResult counts what one ReturnLost handed back and what the hub
// made of it.
type ReturnResult struct {
	Sent, Restored, Held, Superseded, Refused int
}

// maxReturnCalls bounds the calls of one ReturnLost: each call settles
// every record it sends, so this is only a guard.
const maxReturnCalls = 1000

// ReturnLost hands back to the hub every revocation this appliance stored
// from the hub's feed that the feed of the generation it read last did
// not carry (store.HubRevocationsToReturn): call it once the feed was
// read to its end. Records the hub answered are not handed back again in
// that generation; ones it need not get again never.
func ReturnLost(ctx context.Context, db *store.DB, c *Client) (*ReturnResult, error) {
	res := &ReturnResult{}
	for range maxReturnCalls {
		list, gen, err := db.HubRevocationsToReturn(ctx, store.MaxRestoreBatch)
		if err != nil || len(list) == 0 {
			return res, err
		}
		req := RestoreRequest{Now: db.Now().UnixMilli(), Generation: gen, Revocations: make([]RevocationRecord, len(list))}
		for i, r := range list {
			req.Revocations[i] = RevocationToWire(r)
			req.Revocations[i].ID = r.ID // always: the hub's identity, not this appliance's number
		}
		var resp RestoreResponse
		if err := c.Call(ctx, PathRestore, &req, &resp); err != nil {
			return res, fmt.Errorf("hand back revocations: %w", err)
		}
		if err := db.MarkReturned(ctx, gen, list, resp.Dropped); err != nil {
			return res, err
		}
		res.Sent += len(list)
		res.Restored += resp.Restored
		res.Held += resp.Held
		res.Superseded += resp.Superseded
		res.Refused += resp.Refused
	}
	return res, nil
}

// returnLost hands back what the hub lost once a pull read its feed to
// the end, after a new generation (or at the loop's start: a hand-back
// cut short by a stop is taken up again); on failure it is tried again
// after the next pull.
func (l *syncLoop) returnLost(ctx context.Context, res *PullResult) {
	if res.Reread {
		l.returnDue = true
	}
	if !l.returnDue || !res.AtEnd {
		return
	}
	s := l.s
	rr, err := ReturnLost(ctx, s.db, s.client)
	if err != nil {
		if ctx.Err() == nil {
			l.report("restore", err)
		}
		return
	}
	l.returnDue = false
	if rr.Sent > 0 {
		s.log.Warn("sync feed: handed back revocations the hub no longer carried (restored from a backup?)",
			"sent", rr.Sent, "restored", rr.Restored, "held", rr.Held, "superseded", rr.Superseded, "refused", rr.Refused)
	}
}
