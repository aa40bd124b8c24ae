package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Sealing: with a key from outside the data directory (a key file, a
// systemd credential), every private key (keys.private, the bundle key in
// sync_hub.bundle_key) and the district's pseudonym key are kept sealed
// with AES-256-GCM, so a copy of the data directory alone yields no key.
// The sealed pseudonym key lives in the sealed table (the district row
// keeps 32 zero bytes: its column must hold 32 bytes), and a check value
// there tells a wrong key from the right one.

// Errors of sealed data directories.
var (
	// ErrSealed: the data directory's keys are sealed and no key was
	// given to open them.
	ErrSealed = errors.New("the keys in this data directory are sealed: give the key file (--key-file, PASSGATE_KEY_FILE, or the systemd credential passgate-key)")
	// ErrWrongSealKey: the key given does not open this data directory.
	ErrWrongSealKey = errors.New("the key file does not open the keys of this data directory (wrong key file)")
)

// sealMagic starts every sealed value; the digit is the format version.
var sealMagic = []byte("PGSEAL1\x00")

// Limits on the key file: at least 32 bytes of secret, and small.
const (
	minKeyFile = 32
	maxKeyFile = 4096
)

// Names in the sealed table.
const (
	sealedCheck     = "check"
	sealedPseudonym = "pseudonym_key"
)

// Option changes how Open opens a data directory.
type Option func(*DB) error

// WithSealKey opens the data directory with the key from a key file's
// content (ReadKeyFile): existing clear keys are sealed, new ones are
// stored sealed, and a directory sealed with another key is refused.
func WithSealKey(secret []byte) Option {
	return func(db *DB) error {
		if len(secret) < minKeyFile {
			return fmt.Errorf("seal key: %w: key file holds %d bytes, want at least %d", ErrInvalid, len(secret), minKeyFile)
		}
		key, err := hkdf.Key(sha256.New, secret, nil, "passgate sealed keys v1", 32)
		if err != nil {
			return err
		}
		blk, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		db.aead, err = cipher.NewGCM(blk)
		return err
	}
}

// ReadKeyFile reads the secret of a key file: at least 32 bytes (make one
// with `head -c 32 /dev/urandom > FILE`), at most 4 KiB. Any content
// works: the key is derived from all of it.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	switch {
	case len(b) > maxKeyFile:
		return nil, fmt.Errorf("read key file %s: larger than %d bytes", path, maxKeyFile)
	case len(b) < minKeyFile:
		return nil, fmt.Errorf("read key file %s: %d bytes, want at least %d random bytes", path, len(b), minKeyFile)
	}
	return b, nil
}

// Sealed tells whether Open was given a seal key: the keys are stored
// sealed. KeysSealedOnOpen is how many clear values Open sealed.
func (db *DB) Sealed() bool { return db.aead != nil }

// KeysSealedOnOpen is how many clear keys Open found and sealed.
func (db *DB) KeysSealedOnOpen() int { return db.sealedOnOpen }

// SealSecret seals a secret the appliance keeps outside the database
// (the keys of a pending enrolment) with the data directory's seal key,
// bound to label; without a seal key it returns b unchanged.
func (db *DB) SealSecret(label string, b []byte) ([]byte, error) {
	return db.seal("file "+label, b)
}

// OpenSecret reverses SealSecret; a value that was never sealed is
// returned as it is. ErrSealed without the seal key, ErrWrongSealKey with
// another.
func (db *DB) OpenSecret(label string, b []byte) ([]byte, error) {
	return db.unseal("file "+label, b)
}

func isSealed(b []byte) bool {
	return len(b) >= len(sealMagic)+12+16 && bytes.HasPrefix(b, sealMagic)
}

// seal encrypts plain for the place label names (so a sealed value
// cannot be moved to another place); without a seal key, or for an empty
// value, it returns plain.
func (db *DB) seal(label string, plain []byte) ([]byte, error) {
	if db.aead == nil || len(plain) == 0 || isSealed(plain) {
		return plain, nil
	}
	out := append([]byte(nil), sealMagic...)
	nonce := make([]byte, db.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return db.aead.Seal(out, nonce, plain, append(append([]byte(nil), sealMagic...), label...)), nil
}

// unseal reverses seal; a clear value is returned as it is.
func (db *DB) unseal(label string, b []byte) ([]byte, error) {
	if !isSealed(b) {
		return b, nil
	}
	if db.aead == nil {
		return nil, ErrSealed
	}
	rest := b[len(sealMagic):]
	n := db.aead.NonceSize()
	plain, err := db.aead.Open(nil, rest[:n], rest[n:], append(append([]byte(nil), sealMagic...), label...))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrWrongSealKey, label)
	}
	return plain, nil
}

func keyLabel(k *Key) string { return "keys.private " + hex.EncodeToString(k.KID[:]) }

const bundleKeyLabel = "sync_hub.bundle_key"

// createKeySealed is createKey storing the private half sealed; k is
// left as given (with the fields createKey sets).
func (db *DB) createKeySealed(ctx context.Context, tx *sql.Tx, k *Key, now time.Time) error {
	clear := k.Private
	sealed, err := db.seal(keyLabel(k), clear)
	if err != nil {
		return err
	}
	k.Private = sealed
	err = createKey(ctx, tx, k, now)
	k.Private = clear
	return err
}

// unsealKeys opens the private halves of keys in place.
func (db *DB) unsealKeys(keys ...*Key) error {
	for _, k := range keys {
		if k == nil || len(k.Private) == 0 {
			continue
		}
		p, err := db.unseal(keyLabel(k), k.Private)
		if err != nil {
			return fmt.Errorf("key %x: %w", k.KID[:], err)
		}
		k.Private = p
	}
	return nil
}

// createDistrictSealed is createDistrict keeping the pseudonym key in
// the sealed table when sealing; d is left as given.
func (db *DB) createDistrictSealed(ctx context.Context, tx *sql.Tx, d *District, now time.Time) error {
	if db.aead == nil || len(d.PseudonymKey) == 0 {
		return createDistrict(ctx, tx, d, now)
	}
	clear := d.PseudonymKey
	blob, err := db.seal(sealedPseudonym, clear)
	if err != nil {
		return err
	}
	d.PseudonymKey = make([]byte, len(clear))
	err = createDistrict(ctx, tx, d, now)
	d.PseudonymKey = clear
	if err != nil {
		return err
	}
	return putSealed(ctx, tx, sealedPseudonym, blob)
}

func putSealed(ctx context.Context, tx *sql.Tx, name string, blob []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sealed (name, blob) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET blob = excluded.blob`, name, blob)
	return err
}

func getSealed(ctx context.Context, tx *sql.Tx, name string) ([]byte, error) {
	var b []byte
	err := tx.QueryRowContext(ctx, `SELECT blob FROM sealed WHERE name = ?`, name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// unsealDistrict puts the real pseudonym key into d when it is sealed.
func (db *DB) unsealDistrict(ctx context.Context, tx *sql.Tx, d *District) error {
	blob, err := getSealed(ctx, tx, sealedPseudonym)
	if err != nil || blob == nil {
		return err
	}
	if d.PseudonymKey, err = db.unseal(sealedPseudonym, blob); err != nil {
		return fmt.Errorf("pseudonym key: %w", err)
	}
	return nil
}

// openSealing runs at Open: without a seal key it refuses a sealed data
// directory; with one it checks the key against the check value and
// seals every key still in clear. Old clear bytes are overwritten
// (secure_delete) and the WAL is truncated, so no copy is left behind in
// the files.
func (db *DB) openSealing(ctx context.Context) error {
	if db.aead == nil {
		var n int
		if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM sealed`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrSealed
		}
		return nil
	}
	var sealedN int
	err := db.update(ctx, func(tx *sql.Tx) error {
		check, err := getSealed(ctx, tx, sealedCheck)
		if err != nil {
			return err
		}
		if check != nil {
			if _, err := db.unseal(sealedCheck, check); err != nil {
				return ErrWrongSealKey
			}
		} else {
			v := make([]byte, 32)
			if _, err := rand.Read(v); err != nil {
				return err
			}
			if check, err = db.seal(sealedCheck, v); err != nil {
				return err
			}
			if err := putSealed(ctx, tx, sealedCheck, check); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = 1`); err != nil {
			return err
		}
		defer tx.ExecContext(ctx, `PRAGMA secure_delete = 0`) //nolint:errcheck // the connection's default again
		sealedN, err = db.sealClearTx(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("sealed keys: %w", err)
	}
	db.sealedOnOpen = sealedN
	if sealedN > 0 {
		if _, err := db.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("sealed keys: checkpoint: %w", err)
		}
	}
	return nil
}

// sealSingleRow seals the secret in column of the one row (id 1) of
// table when it is stored in clear; table and column come from this
// package, never from input.
func (db *DB) sealSingleRow(ctx context.Context, tx *sql.Tx, table, column, label string) (bool, error) {
	var clear []byte
	err := tx.QueryRowContext(ctx, `SELECT `+column+` FROM `+table+` WHERE id = 1`).Scan(&clear)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	case isSealed(clear) || len(clear) == 0:
		return false, nil
	}
	s, err := db.seal(label, clear)
	if err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = ? WHERE id = 1`, s)
	return err == nil, err
}

// sealClearTx seals every private key, the bundle key and the pseudonym
// key still stored in clear, and says how many it sealed.
func (db *DB) sealClearTx(ctx context.Context, tx *sql.Tx) (int, error) {
	n := 0
	keys, err := findKeys(ctx, tx, KeyFilter{HasPrivate: true})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if isSealed(k.Private) {
			continue
		}
		s, err := db.seal(keyLabel(k), k.Private)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET private = ? WHERE kid = ?`, s, k.KID[:]); err != nil {
			return 0, err
		}
		n++
	}
	// The single-row secrets: the audit key and the bundle key.
	for _, c := range []struct{ table, column, label string }{
		{"audit_key", "private", auditKeyLabel},
		{"sync_hub", "bundle_key", bundleKeyLabel},
		{"city_pseudonym", "key", cityKeyLabel},
	} {
		sealed, err := db.sealSingleRow(ctx, tx, c.table, c.column, c.label)
		if err != nil {
			return 0, err
		}
		if sealed {
			n++
		}
	}
	if have, err := getSealed(ctx, tx, sealedPseudonym); err != nil {
		return 0, err
	} else if have == nil {
		var pk []byte
		err := tx.QueryRowContext(ctx, `SELECT pseudonym_key FROM district WHERE id = 1`).Scan(&pk)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return 0, err
		case len(pk) > 0 && !bytes.Equal(pk, make([]byte, len(pk))):
			s, err := db.seal(sealedPseudonym, pk)
			if err != nil {
				return 0, err
			}
			if err := putSealed(ctx, tx, sealedPseudonym, s); err != nil {
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE district SET pseudonym_key = zeroblob(length(pseudonym_key)) WHERE id = 1`); err != nil {
				return 0, err
			}
			n++
		}
	}
	return n, nil
}
