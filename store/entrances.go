package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Gate screen hold bounds: shorter than two seconds and a person cannot
// read the answer; longer than a minute and the next person may see it.
const (
	MinGateHold     = 2 * time.Second
	MaxGateHold     = 60 * time.Second
	DefaultGateHold = 8 * time.Second
	// maxEntranceRunes bounds an entrance name: a door's name, not a text.
	maxEntranceRunes = 32
)

// CheckEntrance reports whether name may name an entrance: 1 to 32
// characters, printable, no surrounding spaces.
func CheckEntrance(name string) error {
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxEntranceRunes ||
		strings.TrimSpace(name) != name ||
		strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("%w: entrance name", ErrInvalid)
	}
	return nil
}

// SetEntrance says that the input or API device logging under source
// stands at entrance; an empty entrance removes the assignment. The
// change and its audit record commit together.
func (db *DB) SetEntrance(ctx context.Context, source, entrance string, actor Actor) error {
	if err := checkName(source); err != nil {
		return fmt.Errorf("set entrance of %q: %w", source, err)
	}
	if entrance != "" {
		if err := CheckEntrance(entrance); err != nil {
			return fmt.Errorf("set entrance of %q: %w", source, err)
		}
	}
	if actor == "" {
		return fmt.Errorf("set entrance of %q: %w: no actor", source, ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		var old string
		err := tx.QueryRowContext(ctx, `SELECT entrance FROM input_entrances WHERE source = ?`, source).Scan(&old)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if old == entrance {
			return nil // nothing changes: nothing to record
		}
		if entrance == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM input_entrances WHERE source = ?`, source)
		} else {
			_, err = tx.ExecContext(ctx, `
				INSERT INTO input_entrances (source, entrance, updated_ms, actor) VALUES (?, ?, ?, ?)
				ON CONFLICT (source) DO UPDATE SET entrance = excluded.entrance,
					updated_ms = excluded.updated_ms, actor = excluded.actor`,
				source, entrance, now.UnixMilli(), actor)
		}
		if err != nil {
			return mapErr(err)
		}
		return appendAudit(ctx, tx, &AuditRecord{
			Actor: actor, Action: AuditEntrance, Subject: source,
			Detail: AuditDetail(map[string]string{"old": old, "new": entrance}),
		}, now)
	})
	if err != nil {
		return fmt.Errorf("set entrance of %q: %w", source, err)
	}
	return nil
}

// FindEntrances returns the entrance of every assigned source.
func (db *DB) FindEntrances(ctx context.Context) (map[string]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT source, entrance FROM input_entrances`)
	if err != nil {
		return nil, fmt.Errorf("find entrances: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var src, ent string
		if err := rows.Scan(&src, &ent); err != nil {
			return nil, fmt.Errorf("find entrances: %w", err)
		}
		out[src] = ent
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find entrances: %w", err)
	}
	return out, nil
}

// GateHold is how long a gate screen shows a result before it returns
// to waiting for a scan; DefaultGateHold before Setup.
func (db *DB) GateHold(ctx context.Context) (time.Duration, error) {
	var ms int64
	err := db.r.QueryRowContext(ctx, `SELECT gate_hold_ms FROM policy WHERE id = 1`).Scan(&ms)
	if err == sql.ErrNoRows {
		return DefaultGateHold, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find gate hold: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// SetGateHold sets the gate screens' hold time, MinGateHold to
// MaxGateHold, kept to the second, with its audit record.
func (db *DB) SetGateHold(ctx context.Context, d time.Duration, actor Actor) error {
	d = d.Truncate(time.Second)
	if d < MinGateHold || d > MaxGateHold {
		return fmt.Errorf("set gate hold: %w: %v (%v to %v)", ErrInvalid, d, MinGateHold, MaxGateHold)
	}
	if actor == "" {
		return fmt.Errorf("set gate hold: %w: no actor", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE policy SET gate_hold_ms = ? WHERE id = 1`, d.Milliseconds())
		if err != nil {
			return mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotInitialized
		}
		return appendAudit(ctx, tx, &AuditRecord{
			Actor: actor, Action: AuditGateHold, Subject: "policy",
			Detail: AuditDetail(map[string]int64{"seconds": int64(d / time.Second)}),
		}, now)
	})
	if err != nil {
		return fmt.Errorf("set gate hold: %w", err)
	}
	return nil
}
