package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AppendAuditBulk appends n valid, chained login records, step apart
// from now on, in one
// transaction with a prepared insert, continuing the existing chain:
// building a large trail for VerifyAudit measurements without n
// separate appends.
func (db *DB) AppendAuditBulk(ctx context.Context, n int, step time.Duration) error {
	return db.update(ctx, func(tx *sql.Tx) error {
		var seq int64
		prev := make([]byte, auditHashSize)
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ins, err := tx.PrepareContext(ctx, insertAuditSQL)
		if err != nil {
			return err
		}
		defer ins.Close()
		tree, err := newTreeWriter(ctx, tx, true)
		if err != nil {
			return err
		}
		defer tree.close()
		h := sha256.New()
		at := db.now().UnixMilli()
		for i := range n {
			seq++
			subject := fmt.Sprintf("user%d", i%1000)
			detail := []byte(`{"addr":"192.0.2.1","outcome":"ok"}`)
			sum := auditHash(h, nil, seq, at+int64(i)*step.Milliseconds(), []byte("admin"), []byte(AuditLogin), []byte(subject), detail, prev)
			if _, err := ins.ExecContext(ctx, seq, at+int64(i)*step.Milliseconds(), "admin", AuditLogin, subject, string(detail), prev, sum); err != nil {
				return err
			}
			if err := tree.add(ctx, seq, sum); err != nil {
				return err
			}
			prev = sum
		}
		_, err = tx.ExecContext(ctx, upsertAuditHeadSQL, seq, prev)
		return err
	})
}
