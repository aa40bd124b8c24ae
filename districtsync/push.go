package districtsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"passgate/store"
)

// PushOnce sends the appliance's next records to the hub in one request
// (up to MaxScanBatch scans and MaxEventBatch outbox records, each run
// within one epoch, fewer as the client's link to the hub allows: see
// pushSizer) and records the hub's acknowledgement. It returns how
// many records the hub now holds of those sent, and how many wait after
// them; a caller drains the backlog by calling it until backlog is 0,
// and on error retries later with backoff. Warnings (the hub holds
// records this appliance lost) go to slog's default logger; see
// PushOnceLog.
func PushOnce(ctx context.Context, db *store.DB, c *Client) (pushed int, backlog int64, err error) {
	return PushOnceLog(ctx, db, c, slog.Default())
}

// PushOnceLog is PushOnce with a logger.
//
// A push whose answer is lost is simply sent again: the hub stores each
// record once (its marks), and the acknowledgement moves forward only
// when an answer arrives. On a "gap" answer (the hub holds less than
// this appliance was told, after the hub was restored from backup) the
// acknowledged id of that stream goes back to what the hub expects and
// the records are sent again; records no longer here are reported lost.
// A failed push is noted in sync_state.last_error.
func PushOnceLog(ctx context.Context, db *store.DB, c *Client, log *slog.Logger) (pushed int, backlog int64, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pushed, backlog, err = pushOnce(ctx, db, c, log)
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrNotEnrolled) {
		if rerr := db.RecordPushError(context.WithoutCancel(ctx), err.Error()); rerr != nil {
			log.Error("sync push: record error", "err", rerr)
		}
	}
	return pushed, backlog, err
}

func pushOnce(ctx context.Context, db *store.DB, c *Client, log *slog.Logger) (int, int64, error) {
	n := c.push.records()
	b, err := db.NextPush(ctx, n, min(n, MaxEventBatch))
	if err != nil {
		return 0, 0, err
	}
	if b.Empty() {
		return 0, 0, nil
	}
	n, err = send(ctx, db, c, b, log)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Err.Code != "gap" {
		if err != nil {
			return 0, backlogOf(b), fmt.Errorf("sync push: %w", err)
		}
		return n, b.Backlog, nil
	}
	// The answer does not say which stream has the gap: with both in the
	// push, send them one at a time to find out.
	if b.Scans != nil && b.Events != nil {
		scans, events := *b, *b
		scans.Events, events.Scans = nil, nil
		n1, err1 := sendOrRewind(ctx, db, c, &scans, log)
		n2, err2 := sendOrRewind(ctx, db, c, &events, log)
		if err := errors.Join(err1, err2); err != nil {
			return n1 + n2, backlogOf(b), fmt.Errorf("sync push: %w", err)
		}
		return n1 + n2, b.Backlog, nil
	}
	if err := rewind(ctx, db, b, ce.Err.Expected, log); err != nil {
		return 0, backlogOf(b), fmt.Errorf("sync push: %w", err)
	}
	// Sent again from the hub's mark on the next call.
	return 0, backlogOf(b), nil
}

// backlogOf counts everything in and after b: what is still waiting when
// b was not acknowledged.
func backlogOf(b *store.PushBatch) int64 {
	n := b.Backlog
	if b.Scans != nil {
		n += int64(len(b.Scans.Records))
	}
	if b.Events != nil {
		n += int64(len(b.Events.Records))
	}
	return n
}

// sendOrRewind sends a push of one stream and rewinds that stream on a
// gap.
func sendOrRewind(ctx context.Context, db *store.DB, c *Client, b *store.PushBatch, log *slog.Logger) (int, error) {
	n, err := send(ctx, db, c, b, log)
	var ce *CallError
	if errors.As(err, &ce) && ce.Status == http.StatusConflict && ce.Err.Code == "gap" {
		return 0, rewind(ctx, db, b, ce.Err.Expected, log)
	}
	return n, err
}

// rewind moves back the acknowledged id of b's only stream to what the
// hub expects.
func rewind(ctx context.Context, db *store.DB, b *store.PushBatch, expected int64, log *slog.Logger) error {
	stream, from := store.StreamScans, int64(0)
	if b.Scans != nil {
		from = b.Scans.From
	} else {
		stream, from = store.StreamEvents, b.Events.From
	}
	resent, err := db.RewindPush(ctx, stream, from, expected)
	if err != nil {
		return err
	}
	if resent {
		log.Warn("sync push: the hub lacks records it had acknowledged; sending them again", "stream", stream, "from", expected)
	} else {
		log.Error("sync push: the hub lost records this appliance no longer holds; carrying on after them", "stream", stream, "from", expected)
	}
	return nil
}

// send makes one push request of b and records the answer. b is first
// cut to the size the link should carry in pushTargetTime (its Backlog
// grows by what was cut); the outcome sizes the next push.
func send(ctx context.Context, db *store.DB, c *Client, b *store.PushBatch, log *slog.Logger) (int, error) {
	body, err := encodePush(ctx, db, c, b, log)
	if err != nil {
		return 0, err
	}
	records := batchRecords(b)
	var resp PushResponse
	start := time.Now()
	if err := c.callBody(ctx, PathPush, body, &resp); err != nil {
		if ctx.Err() == nil && shrinks(err, time.Since(start)) {
			next := c.push.failed(records)
			if isTimeout(err) {
				log.Warn(fmt.Sprintf("sync push timed out (%d records, %d bytes); next batch %d records", records, len(body), next))
				return 0, fmt.Errorf("timed out (%d records, %d bytes): %w", records, len(body), err)
			}
			log.Info("sync push failed; next batch smaller", "records", records, "bytes", len(body), "next", next)
		}
		return 0, err
	}
	c.push.succeeded(records, len(body), time.Since(start))
	return acknowledge(ctx, db, c, b, &resp, log)
}

// batchRecords counts the records of both streams of b.
func batchRecords(b *store.PushBatch) int {
	n := 0
	if b.Scans != nil {
		n += len(b.Scans.Records)
	}
	if b.Events != nil {
		n += len(b.Events.Records)
	}
	return n
}

// encodePush encodes the push of b, cutting b's records from the end
// until the body fits c's byte budget (or one record of each stream is
// left).
func encodePush(ctx context.Context, db *store.DB, c *Client, b *store.PushBatch, log *slog.Logger) ([]byte, error) {
	limit := c.push.maxBytes()
	checkpoint := auditCheckpoint(ctx, db, c.checkpoint.size.Load(), log)
	for {
		req := pushRequestOf(db, b)
		req.Checkpoint = checkpoint
		body, err := encodeRequest(req)
		if err != nil || len(body) <= limit || !cuttable(b) {
			return body, err
		}
		keep := float64(limit) / float64(len(body)) * 0.9
		cutBatch(b, keep)
	}
}

// cutBatch keeps the first fraction keep of each stream's records (at
// least one, and fewer than before when it had more than one), and
// counts the rest into b's backlog.
func cutBatch(b *store.PushBatch, keep float64) {
	if r := b.Scans; r != nil {
		k := keptOf(len(r.Records), keep)
		b.Backlog += int64(len(r.Records) - k)
		r.Records = r.Records[:k]
	}
	if r := b.Events; r != nil {
		k := keptOf(len(r.Records), keep)
		b.Backlog += int64(len(r.Records) - k)
		r.Records = r.Records[:k]
	}
}

// cuttable says whether a stream of b has more than one record.
func cuttable(b *store.PushBatch) bool {
	return (b.Scans != nil && len(b.Scans.Records) > 1) || (b.Events != nil && len(b.Events.Records) > 1)
}

// keptOf is how many of n records a cut to the fraction keep leaves.
func keptOf(n int, keep float64) int {
	k := int(float64(n) * keep)
	if k >= n {
		k = n - 1
	}
	return max(k, 1)
}

// pushRequestOf is the push request carrying b.
func pushRequestOf(db *store.DB, b *store.PushBatch) *PushRequest {
	req := &PushRequest{Now: db.Now().UnixMilli(), Backlog: b.Backlog}
	if r := b.Scans; r != nil {
		req.Scans = &ScanBatch{Epoch: r.Epoch, From: r.From, Records: make([]ScanRecord, len(r.Records))}
		for i, s := range r.Records {
			req.Scans.Records[i] = recordOf(s)
		}
	}
	if r := b.Events; r != nil {
		req.Events = &EventBatch{Epoch: r.Epoch, From: r.From, Records: make([]EventRecord, len(r.Records))}
		for i, e := range r.Records {
			req.Events.Records[i] = EventRecord{Seq: e.Seq, Kind: e.Kind, At: e.At.UnixMilli(), Body: []byte(e.Body)}
		}
	}
	return req
}

// acknowledge records the hub's answer resp to the push req of b.
func acknowledge(ctx context.Context, db *store.DB, c *Client, b *store.PushBatch, resp *PushResponse, log *slog.Logger) (int, error) {
	var scansAck, eventsAck *store.PushAck
	if r := b.Scans; r != nil {
		scansAck = &store.PushAck{Epoch: r.Epoch, Sent: r.Records[len(r.Records)-1].ID}
	}
	if r := b.Events; r != nil {
		eventsAck = &store.PushAck{Epoch: r.Epoch, Sent: r.Records[len(r.Records)-1].Seq}
	}
	c.checkpoint.size.Store(resp.CheckpointSize)
	// An answer about another epoch than the one sent is not an
	// acknowledgement of these records.
	for _, m := range []struct {
		ack  *store.PushAck
		mark *Mark
		name string
	}{{scansAck, resp.Scans, "scans"}, {eventsAck, resp.Events, "events"}} {
		if m.ack == nil {
			continue
		}
		if m.mark == nil || !bytes.Equal(m.mark.Epoch, m.ack.Epoch) {
			return 0, fmt.Errorf("the hub's answer does not acknowledge the %s sent", m.name)
		}
		m.ack.Mark = m.mark.Mark
	}
	res, err := db.AckPush(ctx, scansAck, eventsAck)
	if err != nil {
		return 0, err
	}
	if res.Ahead {
		log.Warn("sync push: the hub holds records of this appliance that are no longer here (restored from an older backup?); new records are sent in a new epoch")
	}
	n := 0
	if scansAck != nil {
		n += int(min(scansAck.Mark, scansAck.Sent) - b.Scans.Records[0].ID + 1)
	}
	if eventsAck != nil {
		n += int(min(eventsAck.Mark, eventsAck.Sent) - b.Events.Records[0].Seq + 1)
	}
	return max(n, 0), nil
}
