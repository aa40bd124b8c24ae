package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// The city's trust records over the city stream. A hub publishes the
// city's certify records of its own district's roots, so that an import
// at one hub reaches every hub; the city console publishes retirements.
// Every hub applies what it consumes through ImportCityRecord's path,
// verified against the city root it holds, in one transaction with its
// position on the stream (city_trust_link).

// CityTrustDigest names a city record on the stream: its SHA-256.
type CityTrustDigest [sha256.Size]byte

// CityTrustRecord is one of this district's certify records to publish.
type CityTrustRecord struct {
	Digest CityTrustDigest
	Record []byte
}

// CityTrustToPublish returns this district's identifier and the city's
// certify records of its roots held here and valid now; with all false,
// only those the stream has not acknowledged (MarkCityTrustPublished).
// Without a city root there are none.
func (db *DB) CityTrustToPublish(ctx context.Context, all bool) (string, []CityTrustRecord, error) {
	now := db.now()
	var district string
	var out []CityTrustRecord
	err := db.view(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		district = d.ID
		city, err := findCityRoot(ctx, tx)
		if errors.Is(err, ErrNoCityRoot) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT cert FROM keys WHERE role = ? AND district = ? AND cert IS NOT NULL`, RoleRoot, d.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			r, err := pass.ParseCityRecord(b, city.Key)
			if err != nil || r.Kind != pass.CityCertify || r.District != d.ID || !now.Before(r.NotAfter) {
				continue // a retirement is the console's to publish; an expired one is of no use
			}
			out = append(out, CityTrustRecord{Digest: sha256.Sum256(b), Record: b})
		}
		if err := rows.Err(); err != nil || all {
			return err
		}
		// A district holds a root or two: one look-up each.
		kept := out[:0]
		for _, r := range out {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM city_trust_published WHERE digest = ?`, r.Digest[:]).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				kept = append(kept, r)
			}
		}
		out = kept
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("find city records to publish: %w", err)
	}
	return district, out, nil
}

// MarkCityTrustPublished records that the city stream acknowledged the
// record named digest.
func (db *DB) MarkCityTrustPublished(ctx context.Context, digest CityTrustDigest) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO city_trust_published (digest, published_ms) VALUES (?, ?)
			ON CONFLICT (digest) DO NOTHING`, digest[:], now.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("mark city record published: %w", err)
	}
	return nil
}

// CityTrustPosition is the last stream sequence of the city's trust
// records applied here (0: none).
func (db *DB) CityTrustPosition(ctx context.Context) (uint64, error) {
	var seq int64
	err := db.r.QueryRowContext(ctx, `SELECT coalesce((SELECT consumed_seq FROM city_trust_link WHERE id = 1), 0)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("find city trust position: %w", err)
	}
	return uint64(seq), nil
}

// CityTrustMessage is a message of the city's trust records as the link
// read it: its stream sequence, where it came from, and its bytes.
type CityTrustMessage struct {
	StreamSeq uint64
	// Retirement: it came on the console's retirements subject; otherwise
	// on SubjectDistrict's trust subject.
	Retirement      bool
	SubjectDistrict string
	Record          []byte
	// Refused, if set, is why the link refused it before reading it (a
	// subject it cannot place, an oversize message).
	Refused string
}

// ApplyCityTrustMessages applies messages of the city's trust records,
// in stream order, in one transaction with the hub's position on the
// stream, through ImportCityRecord's path: actor "city:<district>" for a
// district's trust subject, "city" for the console's retirements. A
// message at or before the position, or a record held already, changes
// nothing. Refused, audited (city_record_refused, with the stream
// sequence): a message the link refused, a retirement on a trust
// subject or a certification on the retirements subject, a
// certification of a district other than its subject's, and whatever
// ImportCityRecord refuses. Without a city root it is ErrNoCityRoot and
// nothing moves: the link holds off until the admin trusts one.
func (db *DB) ApplyCityTrustMessages(ctx context.Context, msgs []CityTrustMessage) ([]CityOutcome, error) {
	now := db.now()
	outs := make([]CityOutcome, len(msgs))
	err := db.update(ctx, func(tx *sql.Tx) error {
		if enrolled, err := isEnrolled(ctx, tx); err != nil || enrolled {
			return errors.Join(err, ErrNotHub)
		}
		city, err := findCityRoot(ctx, tx)
		if err != nil {
			return err
		}
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT consumed_seq FROM city_trust_link WHERE id = 1), 0)`).Scan(&pos); err != nil {
			return err
		}
		last := uint64(pos)
		for i := range msgs {
			m := &msgs[i]
			if m.StreamSeq <= last {
				outs[i] = CityHeld
				continue
			}
			last = m.StreamSeq
			if outs[i], err = applyCityTrustMessage(ctx, tx, city, m, now); err != nil {
				return err
			}
		}
		if last == uint64(pos) {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO city_trust_link (id, consumed_seq, consumed_ms) VALUES (1, ?1, ?2)
			ON CONFLICT (id) DO UPDATE SET consumed_seq = ?1, consumed_ms = ?2`, int64(last), now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply city trust records: %w", err)
	}
	return outs, nil
}

// applyCityTrustMessage applies one message past the position.
func applyCityTrustMessage(ctx context.Context, tx *sql.Tx, city *CityRoot, m *CityTrustMessage, now time.Time) (CityOutcome, error) {
	actor, from := ActorCity, m.SubjectDistrict
	placed := m.Retirement || pass.CheckIdent("district", from) == nil
	if !placed {
		from = fmt.Sprintf("%.80q", from) // outside bytes, not an identifier: quoted in the audit trail
	} else if !m.Retirement {
		actor = Actor(string(ActorCity) + ":" + from)
	}
	refuse := func(subject, district, why string) (CityOutcome, error) {
		return CityRefused, appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityRecordRefused, Subject: subject,
			Detail: AuditDetail(map[string]any{"district": district, "why": why, "stream_seq": m.StreamSeq,
				"subject_district": from, "retirement_subject": m.Retirement})}, now)
	}
	switch {
	case m.Refused != "":
		return refuse("", "", m.Refused)
	case !placed:
		return refuse("", "", "not on a district's trust subject")
	}
	r, err := pass.ParseCityRecord(m.Record, city.Key)
	if err != nil {
		return refuse("", "", err.Error())
	}
	kid := r.Root.KID.String()
	switch {
	case m.Retirement && r.Kind != pass.CityRetire:
		return refuse(kid, r.District, "a "+r.Kind.String()+" record on the city's retirements subject")
	case !m.Retirement && r.Kind != pass.CityCertify:
		return refuse(kid, r.District, "a "+r.Kind.String()+" record on district "+m.SubjectDistrict+"'s trust subject")
	case !m.Retirement && r.District != m.SubjectDistrict:
		return refuse(kid, r.District, fmt.Sprintf("a certification of district %q's root on district %q's trust subject", r.District, m.SubjectDistrict))
	}
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE kid = ? AND cert = ?`, r.Root.KID[:], m.Record).Scan(&held); err != nil {
		return CityHeld, err
	}
	if held > 0 {
		return CityHeld, nil
	}
	_, _, why, err := importCityRecord(ctx, tx, m.Record, actor, now)
	if err != nil {
		return CityHeld, err
	}
	if why != "" {
		return refuse(kid, r.District, why)
	}
	return CityStored, nil
}
