package store

import (
	"context"
	"database/sql"
	"time"
)

// Purges share the one writer connection with the scan log: while a purge
// transaction runs, every gate's check waits for it to commit. A fixed
// batch size cannot bound that wait, because the cost of a deleted row
// depends on the disk and on how scattered its index entries are (a scan
// row has four indexes, two of them on random identifiers). So purges
// size their transactions by time instead.
const (
	// purgeTxTarget is the longest a purge transaction should hold the
	// writer: well under what a person at a gate notices.
	purgeTxTarget = 20 * time.Millisecond
	// purgeMinBatch keeps a purge moving on a very slow disk.
	purgeMinBatch = 10
	// purgeFirstBatch is where sizing starts: small, so that the first
	// transaction is short whatever the disk.
	purgeFirstBatch = 64
)

// purgePacer sizes and spaces the transactions of one purge.
type purgePacer struct {
	max  int // the caller's batch: never more rows per transaction
	size int // rows for the next transaction
}

func newPurgePacer(max int) *purgePacer {
	return &purgePacer{max: max, size: min(max, purgeFirstBatch)}
}

// next adapts the batch to a transaction of p.size rows that took took,
// halving it above purgeTxTarget (not below purgeMinBatch, nor above
// p.max) and doubling it below half of it (up to p.max), then
// leaves the writer free for as long as the transaction held it, so that
// queued scans commit first and a purge never takes more than half the
// writer's time. It returns ctx's error if ctx ends meanwhile.
func (p *purgePacer) next(ctx context.Context, took time.Duration) error {
	switch {
	case took > purgeTxTarget:
		p.size = max(min(p.max, purgeMinBatch), p.size/2)
	case took < purgeTxTarget/2:
		p.size = min(p.max, p.size*2)
	}
	t := time.NewTimer(took)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// purgeBatches runs del, which deletes at most size rows in the
// transaction it is given and says how many it deleted, until a
// transaction deletes fewer than size, sizing and spacing the
// transactions by a purgePacer of at most batch rows (0: 1,000). It
// returns the rows deleted, also when an error or ctx stops it part way.
func (db *DB) purgeBatches(ctx context.Context, batch int, del func(tx *sql.Tx, size int) (int64, error)) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	var total int64
	pace := newPurgePacer(batch)
	for {
		var n int64
		size, start := pace.size, time.Now()
		err := db.update(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = del(tx, size)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(size) {
			return total, nil
		}
		if err := pace.next(ctx, time.Since(start)); err != nil {
			return total, err
		}
	}
}

// execRows runs a DELETE in tx and returns how many rows it removed.
func execRows(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
