package districtsync

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"

	"passgate/store"
)

// Audit checkpoints on the wire: every push (and every up-bundle) of an
// enrolled appliance carries a signed checkpoint of its audit trail
// (store/checkpoint.go) and a consistency proof from the newest one the
// hub accepted, which the hub names in its answer. The hub checks them
// and the chain of the audit records pushed, and raises an alarm on a
// rewrite or rollback (store.CheckApplianceTrail).

// AuditCheckpoint is an appliance's signed checkpoint with the proof that
// it extends the tree of From records (the size the hub last answered;
// 0 when not known, e.g. after a restart or in a bundle).
type AuditCheckpoint struct {
	Note  []byte   `json:"note"`
	From  int64    `json:"from,omitempty"`
	Proof [][]byte `json:"proof,omitempty"`
}

// pushedCheckpoint converts a wire checkpoint into the store's terms. A
// proof of the wrong shape becomes no proof: it then fails the check,
// and the alarm says so, rather than the push being refused unseen.
func pushedCheckpoint(c *AuditCheckpoint) *store.PushedCheckpoint {
	if c == nil {
		return nil
	}
	p := &store.PushedCheckpoint{Note: c.Note, From: c.From}
	if len(c.Proof) > store.MaxCheckpointProof {
		return p
	}
	for _, h := range c.Proof {
		if len(h) != tlog.HashSize {
			p.Proof = nil
			return p
		}
		var x tlog.Hash
		copy(x[:], h)
		p.Proof = append(p.Proof, x)
	}
	return p
}

// checkTrail runs the hub's checks of appliance a's trail after its push
// (or up-bundle) was stored, logs an alarm loudly, and returns the
// checkpoint size the hub now holds for it. A failure to check is
// logged, never fails the push: its records are already stored.
func checkTrail(ctx context.Context, db *store.DB, log *slog.Logger, a *store.Appliance, c *AuditCheckpoint) int64 {
	out, err := db.CheckApplianceTrail(ctx, a.ID, pushedCheckpoint(c))
	if err != nil {
		log.Error("audit checkpoint: check", "appliance", a.Name, "err", err)
		return 0
	}
	if out.Alarm != "" {
		log.Error("AUDIT ALARM: appliance's audit trail", "appliance", a.Name, "reason", out.Alarm)
	}
	return out.Size
}

// auditCheckpoint signs a checkpoint of this appliance's trail, with a
// consistency proof from the size from (0: none). Nil if it cannot be
// made: the push goes without one, and the failure is logged (a trail
// that cannot be checkpointed is itself what the hub must hear about,
// but the records must still go).
func auditCheckpoint(ctx context.Context, db *store.DB, from int64, log *slog.Logger) *AuditCheckpoint {
	signed, cp, err := db.SignCheckpoint(ctx, nil)
	if err != nil {
		log.Error("audit checkpoint", "err", err)
		return nil
	}
	c := &AuditCheckpoint{Note: signed, From: from}
	if from > 0 && from <= cp.Size {
		proof, err := db.AuditConsistency(ctx, from, cp.Size)
		if err != nil {
			log.Error("audit checkpoint: proof", "from", from, "to", cp.Size, "err", err)
			return c
		}
		for _, h := range proof {
			c.Proof = append(c.Proof, h[:])
		}
	}
	return c
}

// checkpointFrom is the checkpoint size a hub client last heard from
// its hub, to prove the next checkpoint from.
type checkpointFrom struct{ size atomic.Int64 }
