package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"
)

// Feed generations. A hub's revocation list is numbered, and appliances
// pull what follows the last number they hold. A hub restored from a
// backup has lost the end of that history: the numbers its appliances
// hold say nothing about what it holds now. The hub cannot tell a
// restored copy from the file it wrote last, so every open draws a new
// generation; an appliance that sees a generation other than the one it
// read last reads the whole feed again from the start (keeping every
// revocation it holds: the feed never undoes one).

// GenerationSize is the size of a feed generation.
const GenerationSize = 16

// AuditFeedReread is an appliance's record that its hub's history
// changed (a new generation, or a position beyond the hub's end) and the
// whole feed is read again.
const AuditFeedReread = "sync_feed_reread"

// newGenerationOnOpen draws the hub's feed generation for this open. An
// enrolled appliance serves no feed and has none.
func newGenerationOnOpen(ctx context.Context, tx *sql.Tx, now time.Time) ([]byte, error) {
	gen := make([]byte, GenerationSize)
	if _, err := rand.Read(gen); err != nil {
		return nil, fmt.Errorf("draw feed generation: %w", err)
	}
	// A schema opened short of its last migration (migration tests) has
	// no table yet: the generation then lives for this open only.
	var table bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'feed_generation')`).Scan(&table); err != nil || !table {
		return gen, err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO feed_generation (id, generation, opened_ms) VALUES (1, ?1, ?2)
		ON CONFLICT (id) DO UPDATE SET generation = ?1, opened_ms = ?2`, gen, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store feed generation: %w", err)
	}
	return gen, nil
}

// FeedGeneration returns the hub's feed generation (nil on an enrolled
// appliance) and the end of its revocation numbering: the highest number
// handed out or reserved, never below one an appliance can hold unless
// the hub's history went backwards.
func (db *DB) FeedGeneration(ctx context.Context) ([]byte, int64, error) {
	if db.generation == nil {
		return nil, 0, nil
	}
	var end sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'revocations'`).Scan(&end)
	if err != nil && err != sql.ErrNoRows {
		return nil, 0, fmt.Errorf("feed generation: %w", err)
	}
	return bytes.Clone(db.generation), end.Int64, nil
}

// RestartFeed makes an enrolled appliance read its hub's feed again from
// the start, in generation gen: revocations from 0, the whole trust list
// and the policy. Nothing held is dropped. historyChanged (the hub's
// history went backwards, or may have: not the first generation this
// appliance sees) is recorded for the status page and audited.
func (db *DB) RestartFeed(ctx context.Context, gen []byte, historyChanged bool) error {
	if len(gen) != GenerationSize {
		return fmt.Errorf("restart feed: %w: generation of %d bytes", ErrInvalid, len(gen))
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return restartFeed(ctx, tx, gen, historyChanged, now)
	})
	if err != nil {
		return fmt.Errorf("restart feed: %w", err)
	}
	return nil
}

func restartFeed(ctx context.Context, tx *sql.Tx, gen []byte, historyChanged bool, now time.Time) error {
	var seq int64
	var old []byte
	if err := tx.QueryRowContext(ctx, `SELECT revocations_seq, generation FROM sync_state WHERE id = 1`).Scan(&seq, &old); err != nil {
		return mapNotEnrolled(err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE sync_state SET revocations_seq = 0, trust_hash = NULL, policy_ms = 0, generation = ?,
		history_changed_ms = CASE WHEN ? THEN ? ELSE history_changed_ms END WHERE id = 1`,
		gen, historyChanged, now.UnixMilli())
	if err != nil || !historyChanged {
		return err
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditFeedReread, Subject: "feed",
		Detail: AuditDetail(map[string]any{"old_generation": hex.EncodeToString(old), "new_generation": hex.EncodeToString(gen),
			"revocations_seq": seq})}, now)
}

// applyGeneration moves the appliance to the feed's generation when it
// carries one it has not read: a bundle from a hub whose history changed
// is applied over a fresh start (ApplyFeed).
func applyGeneration(ctx context.Context, tx *sql.Tx, gen []byte, now time.Time) error {
	if gen == nil {
		return nil
	}
	if len(gen) != GenerationSize {
		return fmt.Errorf("%w: generation of %d bytes", ErrInvalid, len(gen))
	}
	var old []byte
	if err := tx.QueryRowContext(ctx, `SELECT generation FROM sync_state WHERE id = 1`).Scan(&old); err != nil {
		return mapNotEnrolled(err)
	}
	if bytes.Equal(old, gen) {
		return nil
	}
	return restartFeed(ctx, tx, gen, old != nil, now)
}

func mapNotEnrolled(err error) error {
	if err == sql.ErrNoRows {
		return ErrNotEnrolled
	}
	return err
}
