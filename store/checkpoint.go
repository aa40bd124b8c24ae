package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The audit trail's anchor outside the database.
//
// The hash chain (audit.go) proves that the records in the file fit
// together, but whoever can write the file can rewrite them all and
// rehash. So every record is also a leaf of a Merkle tree (the
// transparency-log tree of RFC 6962, as golang.org/x/mod/sumdb/tlog
// computes it): leaf i is RecordHash(hash of record i+1). The tree's
// hashes are stored (audit_tree, indexed as tlog.StoredHashIndex), so its
// root at any size and the consistency proof between two sizes cost a
// few reads. A checkpoint names the tree's size and root and is signed by
// the appliance's own key as a signed note:
//
//	passgate audit <district id>/<appliance>
//	<size>
//	<root, standard base64>
//
//	— passgate-audit <signature>
//
// Checkpoints leave the appliance (a file an operator copies, the hub
// with every push). A later trail must extend every checkpoint made of
// it: a consistency proof from the checkpoint's size to the current one,
// checked against a root recomputed from the records themselves.

// AuditKeyName is the name of every audit-signing key in signed notes;
// the key hash tells keys apart.
const AuditKeyName = "passgate-audit"

// checkpointPrefix starts a checkpoint's origin line.
const checkpointPrefix = "passgate audit "

// MaxCheckpoint bounds a signed checkpoint as read from outside: three
// short lines and a few signatures.
const MaxCheckpoint = 2048

// purgedLeaf stands for records removed by retention before their tree
// hashes were stored (a trail purged before the upgrade that added the
// tree): their hashes are gone, only the chain's base still covers them.
var purgedLeaf = tlog.RecordHash([]byte("passgate-audit-v1 record purged before the tree"))

// Checkpoint is a signed statement of the audit trail's size and tree
// root.
type Checkpoint struct {
	Origin string    // whose trail: "passgate audit <district>/<appliance>"
	Size   int64     // records appended so far
	Root   tlog.Hash // tree hash of the first Size records
}

// Text is the checkpoint as signed.
func (c *Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint parses a checkpoint's text (the part of the note that
// is signed). It accepts exactly the form Text writes.
func ParseCheckpoint(text string) (*Checkpoint, error) {
	if len(text) > MaxCheckpoint {
		return nil, fmt.Errorf("parse checkpoint: %w: %d bytes", ErrInvalid, len(text))
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return nil, fmt.Errorf("parse checkpoint: %w: want three lines", ErrInvalid)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if !validOrigin(origin) {
		return nil, fmt.Errorf("parse checkpoint: %w: origin %q", ErrInvalid, origin)
	}
	sz := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sz {
		return nil, fmt.Errorf("parse checkpoint: %w: size %q", ErrInvalid, sz)
	}
	r := strings.TrimSuffix(lines[2], "\n")
	root, err := base64.StdEncoding.Strict().DecodeString(r)
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != r {
		return nil, fmt.Errorf("parse checkpoint: %w: root %q", ErrInvalid, r)
	}
	c := &Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// validOrigin: the prefix, then printable UTF-8 without line breaks.
func validOrigin(s string) bool {
	if !strings.HasPrefix(s, checkpointPrefix) || len(s) == len(checkpointPrefix) || len(s) > 256 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// AuditOrigin names an appliance's trail in its checkpoints.
func AuditOrigin(districtID, appliance string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if !unicode.IsPrint(r) || r == '/' {
				return '_'
			}
			return r
		}, s)
	}
	return checkpointPrefix + clean(districtID) + "/" + clean(appliance)
}

// OpenCheckpoint verifies a signed checkpoint against the given keys
// and parses it. The error says whether the signature or the text is
// at fault.
func OpenCheckpoint(signed []byte, keys note.Verifiers) (*Checkpoint, error) {
	if len(signed) > MaxCheckpoint {
		return nil, fmt.Errorf("open checkpoint: %w: %d bytes", ErrInvalid, len(signed))
	}
	n, err := note.Open(signed, keys)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: signature: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

// VerifierKeys parses audit public keys (note verifier keys, one per
// line; blank lines and lines starting with # are skipped).
func VerifierKeys(text string) (note.Verifiers, error) {
	var vs []note.Verifier
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("audit key %q: %w", line, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: no audit key", ErrInvalid)
	}
	return note.VerifierList(vs...), nil
}

// ed25519Signer signs notes with a key kept in the database.
type ed25519Signer struct {
	hash uint32
	key  ed25519.PrivateKey
}

// Name is the key's name in signed notes.
func (s *ed25519Signer) Name() string { return AuditKeyName }

// KeyHash tells this key from others of the same name.
func (s *ed25519Signer) KeyHash() uint32 { return s.hash }

// Sign signs a note's text.
func (s *ed25519Signer) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

// newAuditSigner makes a note signer of an Ed25519 private key and
// returns its verifier key.
func newAuditSigner(priv []byte) (note.Signer, string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, "", fmt.Errorf("%w: audit signing key of %d bytes", ErrCorrupt, len(priv))
	}
	key := ed25519.PrivateKey(priv)
	vkey, err := AuditVerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", err
	}
	return &ed25519Signer{hash: v.KeyHash(), key: key}, vkey, nil
}

// AuditVerifierKey is the note verifier key of an appliance's audit
// (for an enrolled appliance: bundle) public key, as `audit verify --key`
// and the hub take it.
func AuditVerifierKey(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: audit public key of %d bytes", ErrInvalid, len(pub))
	}
	return note.NewEd25519VerifierKey(AuditKeyName, pub)
}

// auditSigner returns the key that signs this appliance's checkpoints:
// an enrolled appliance's bundle key (the hub already holds its public
// half), else the audit key of audit_key, made here when create is set
// and there is none yet (first start, or the first start after the
// upgrade that introduced it).
func (db *DB) auditSigner(ctx context.Context, create bool) (note.Signer, string, error) {
	h, err := db.SyncHubInfo(ctx)
	if err == nil {
		return newAuditSigner(h.BundleKey)
	}
	if !errors.Is(err, ErrNotEnrolled) {
		return nil, "", err
	}
	var priv []byte
	err = db.r.QueryRowContext(ctx, `SELECT private FROM audit_key WHERE id = 1`).Scan(&priv)
	if errors.Is(err, sql.ErrNoRows) && create {
		_, fresh, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, "", gerr
		}
		sealed, serr := db.seal(auditKeyLabel, []byte(fresh))
		if serr != nil {
			return nil, "", serr
		}
		err = db.update(ctx, func(tx *sql.Tx) error {
			// Another process may have made one meanwhile: keep the first.
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_key (id, private, created_ms) VALUES (1, ?, ?)
				ON CONFLICT (id) DO NOTHING`, sealed, db.now().UnixMilli()); err != nil {
				return mapErr(err)
			}
			return tx.QueryRowContext(ctx, `SELECT private FROM audit_key WHERE id = 1`).Scan(&priv)
		})
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("audit signing key: %w", ErrNotFound)
	}
	if err != nil {
		return nil, "", err
	}
	if priv, err = db.unseal(auditKeyLabel, priv); err != nil {
		return nil, "", fmt.Errorf("audit signing key: %w", err)
	}
	return newAuditSigner(priv)
}

// auditKeyLabel binds the sealed audit key to its place.
const auditKeyLabel = "audit_key"

// AuditPublicKey returns the verifier key of this appliance's
// checkpoints, making the signing key if there is none yet. An operator
// keeps a copy beside the checkpoints: the database may be the forger.
func (db *DB) AuditPublicKey(ctx context.Context) (string, error) {
	_, vkey, err := db.auditSigner(ctx, true)
	if err != nil {
		return "", fmt.Errorf("audit public key: %w", err)
	}
	return vkey, nil
}

// AuditVerifierKey returns the verifier key of this appliance's
// checkpoints without making one: read-only, for a verify.
func (db *DB) AuditVerifierKey(ctx context.Context) (string, error) {
	_, vkey, err := db.auditSigner(ctx, false)
	if err != nil {
		return "", fmt.Errorf("audit public key: %w", err)
	}
	return vkey, nil
}

// SignCheckpoint signs a checkpoint of the trail as it is now. prev, if
// not nil, is the newest checkpoint made before (from the checkpoint
// file): the trail must extend it, by a consistency proof from the
// stored tree, or no new checkpoint is signed and an *AuditError says
// why, so a rewritten trail is never blessed by a fresh signature.
func (db *DB) SignCheckpoint(ctx context.Context, prev *Checkpoint) (signed []byte, cp *Checkpoint, err error) {
	signer, _, err := db.auditSigner(ctx, true)
	if err != nil {
		return nil, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		cp, err = treeHead(ctx, tx)
		if err != nil {
			return err
		}
		cp.Origin = AuditOrigin(d.ID, d.Appliance)
		if prev != nil {
			return checkExtends(ctx, tx, cp.Size, cp.Root, prev)
		}
		return nil
	})
	if err != nil {
		db.noteAuditBroken(err)
		return nil, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	signed, err = note.Sign(&note.Note{Text: cp.Text()}, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return signed, cp, nil
}

// AuditConsistency proves that the trail's tree at size to extends the
// one at size from (from ≤ to ≤ the trail's size), from the stored tree.
func (db *DB) AuditConsistency(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	var proof tlog.TreeProof
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		proof, err = tlog.ProveTree(to, from, newTreeReader(ctx, tx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prove audit consistency %d→%d: %w", from, to, err)
	}
	return proof, nil
}

// treeHead reads the trail's size (the head's seq) and the stored tree's
// root at that size, after checking that the newest leaf is the head's
// record: a tree that lags or leads the chain is not signed.
func treeHead(ctx context.Context, tx *sql.Tx) (*Checkpoint, error) {
	var size int64
	var head []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&size, &head)
	if errors.Is(err, sql.ErrNoRows) {
		return &Checkpoint{Root: tlog.Hash{}}, treeRootEmpty(ctx, tx)
	}
	if err != nil {
		return nil, err
	}
	r := newTreeReader(ctx, tx)
	leaf, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, size-1)})
	if err != nil {
		return nil, &AuditError{Seq: size, Reason: "the tree of the trail lacks the newest record"}
	}
	if leaf[0] != tlog.RecordHash(head) {
		return nil, &AuditError{Seq: size, Reason: "the tree's newest leaf is not the newest record"}
	}
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		return nil, &AuditError{Seq: size, Reason: fmt.Sprintf("the tree of the trail is incomplete: %v", err)}
	}
	return &Checkpoint{Size: size, Root: root}, nil
}

// treeRootEmpty: with no head, no record may be in the tree either.
func treeRootEmpty(ctx context.Context, tx *sql.Tx) error {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_tree`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &AuditError{Seq: 1, Reason: "the newest record (audit_head) is missing but the tree holds records"}
	}
	return nil
}

// checkExtends proves from the stored tree that the trail of the given
// size and root (recomputed or read by the caller) extends cp.
func checkExtends(ctx context.Context, tx *sql.Tx, size int64, root tlog.Hash, cp *Checkpoint) error {
	if cp.Size > size {
		return &AuditError{Seq: size + 1, Reason: fmt.Sprintf(
			"the trail has %d records but a checkpoint of it (%s) has %d: records removed from the end, or the database restored from an older copy",
			size, cp.Origin, cp.Size)}
	}
	proof, err := tlog.ProveTree(size, cp.Size, newTreeReader(ctx, tx))
	if err == nil {
		err = tlog.CheckTree(proof, size, root, cp.Size, cp.Root)
	}
	if err != nil {
		return &AuditError{Seq: cp.Size, Reason: fmt.Sprintf(
			"the trail does not extend its checkpoint of %d records (%s): records up to %d were altered, removed or replaced",
			cp.Size, cp.Origin, cp.Size)}
	}
	return nil
}

// treeReader reads stored tree hashes in a transaction. It implements
// tlog.HashReader, which has no context: the transaction's is kept.
type treeReader struct {
	ctx   context.Context
	tx    *sql.Tx
	stmt  *sql.Stmt           // nil: unprepared
	cache map[int64]tlog.Hash // hashes written by this transaction, by index
}

func newTreeReader(ctx context.Context, tx *sql.Tx) *treeReader {
	return &treeReader{ctx: ctx, tx: tx}
}

// ReadHashes returns the stored hashes at indexes, in order.
func (r *treeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if h, ok := r.cache[idx]; ok {
			out[i] = h
			continue
		}
		var b []byte
		var err error
		if r.stmt != nil {
			err = r.stmt.QueryRowContext(r.ctx, idx).Scan(&b)
		} else {
			err = r.tx.QueryRowContext(r.ctx, `SELECT hash FROM audit_tree WHERE id = ?`, idx).Scan(&b)
		}
		if errors.Is(err, sql.ErrNoRows) {
			level, n := tlog.SplitStoredHashIndex(idx)
			return nil, fmt.Errorf("%w: tree hash %d (level %d, node %d) missing", ErrCorrupt, idx, level, n)
		}
		if err != nil {
			return nil, err
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("%w: tree hash %d of %d bytes", ErrCorrupt, idx, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// treeWriter adds the tree hashes of records as an auditWriter appends
// them, in the same transaction.
type treeWriter struct {
	r   *treeReader
	ins *sql.Stmt // nil: unprepared
}

// treeCacheMax bounds the hashes a bulk append keeps in memory; past it
// the cache starts over and reads go to the (page-cached) table.
const treeCacheMax = 4096

func newTreeWriter(ctx context.Context, tx *sql.Tx, prepare bool) (*treeWriter, error) {
	w := &treeWriter{r: newTreeReader(ctx, tx)}
	w.r.cache = map[int64]tlog.Hash{}
	if prepare {
		var err error
		if w.ins, err = tx.PrepareContext(ctx, insertTreeSQL); err != nil {
			return nil, err
		}
		if w.r.stmt, err = tx.PrepareContext(ctx, `SELECT hash FROM audit_tree WHERE id = ?`); err != nil {
			w.ins.Close()
			return nil, err
		}
	}
	return w, nil
}

const insertTreeSQL = `INSERT INTO audit_tree (id, hash) VALUES (?, ?)`

// add stores the hashes record seq (with chain hash sum) completes.
func (w *treeWriter) add(ctx context.Context, seq int64, sum []byte) error {
	return w.addLeaf(ctx, seq, tlog.RecordHash(sum))
}

func (w *treeWriter) addLeaf(ctx context.Context, seq int64, leaf tlog.Hash) error {
	hashes, err := tlog.StoredHashesForRecordHash(seq-1, leaf, w.r)
	if err != nil {
		return fmt.Errorf("audit tree at record %d: %w", seq, err)
	}
	if len(w.r.cache) > treeCacheMax {
		clear(w.r.cache)
	}
	base := tlog.StoredHashIndex(0, seq-1)
	for i, h := range hashes {
		idx := base + int64(i)
		if w.ins != nil {
			_, err = w.ins.ExecContext(ctx, idx, h[:])
		} else {
			_, err = w.r.tx.ExecContext(ctx, insertTreeSQL, idx, h[:])
		}
		if err != nil {
			return mapErr(err)
		}
		w.r.cache[idx] = h
	}
	return nil
}

func (w *treeWriter) close() {
	if w.ins != nil {
		w.ins.Close()
	}
	if w.r.stmt != nil {
		w.r.stmt.Close()
	}
}

// buildAuditTree stores the tree of a trail that has records but no
// tree yet: a database from before the tree existed. Records removed by
// retention before then count as purgedLeaf, the base itself by its
// hash. It runs at Open, once: later appends keep the tree current.
func (db *DB) buildAuditTree(ctx context.Context) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		var head, treeRows int64
		err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM audit_head WHERE id = 1), 0),
			EXISTS (SELECT 1 FROM audit_tree)`).Scan(&head, &treeRows)
		if err != nil || head == 0 || treeRows > 0 {
			return err
		}
		var baseSeq int64
		var baseHash []byte
		err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_base WHERE id = 1`).Scan(&baseSeq, &baseHash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		w, err := newTreeWriter(ctx, tx, true)
		if err != nil {
			return err
		}
		defer w.close()
		rows, err := tx.QueryContext(ctx, `SELECT seq, hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq`, baseSeq, head)
		if err != nil {
			return err
		}
		defer rows.Close()
		next := int64(1)
		fill := func(upTo int64) error { // records missing from the file
			for ; next <= upTo; next++ {
				leaf := purgedLeaf
				if next == baseSeq && len(baseHash) > 0 {
					leaf = tlog.RecordHash(baseHash)
				}
				if err := w.addLeaf(ctx, next, leaf); err != nil {
					return err
				}
			}
			return nil
		}
		for rows.Next() {
			var seq int64
			var sum []byte
			if err := rows.Scan(&seq, &sum); err != nil {
				return err
			}
			if err := fill(seq - 1); err != nil {
				return err
			}
			if err := w.add(ctx, seq, sum); err != nil {
				return err
			}
			next = seq + 1
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return fill(head)
	})
	if err != nil {
		return fmt.Errorf("build audit tree: %w", err)
	}
	return nil
}

// treeStack recomputes the tree root from leaves as they stream by:
// the hashes of the maximal complete subtrees so far, left to right.
type treeStack struct {
	n      int64 // leaves so far
	hashes []tlog.Hash
}

// push adds the next leaf.
func (s *treeStack) push(leaf tlog.Hash) {
	s.hashes = append(s.hashes, leaf)
	s.n++
	for k := s.n; k&1 == 0; k >>= 1 {
		l := len(s.hashes)
		s.hashes[l-2] = tlog.NodeHash(s.hashes[l-2], s.hashes[l-1])
		s.hashes = s.hashes[:l-1]
	}
}

// root is the tree hash of the leaves so far (zero for none).
func (s *treeStack) root() tlog.Hash {
	if len(s.hashes) == 0 {
		return tlog.Hash{}
	}
	h := s.hashes[len(s.hashes)-1]
	for i := len(s.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(s.hashes[i], h)
	}
	return h
}

// startAt seeds the stack with the stored subtrees covering the first
// n leaves, whose records retention removed.
func (s *treeStack) startAt(r *treeReader, n int64) error {
	var idx []int64
	var off int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, off>>level))
			off += 1 << level
		}
	}
	hs, err := r.ReadHashes(idx)
	if err != nil {
		return err
	}
	s.hashes, s.n = hs, n
	return nil
}

// AuditState is the outcome of the newest check of the trail in this
// process (at start, periodically, before a checkpoint).
type AuditState struct {
	CheckedAt time.Time
	Records   int64
	Broken    string // empty: intact
}

// AuditState returns the newest check's outcome; nil before the first.
func (db *DB) AuditState() *AuditState { return db.auditState.Load() }

// noteAuditBroken records a broken trail found by any check.
func (db *DB) noteAuditBroken(err error) {
	var ae *AuditError
	if errors.As(err, &ae) {
		db.auditState.Store(&AuditState{CheckedAt: time.Now(), Broken: ae.Error()})
	}
}

// NoteAuditWarning keeps a warning about the trail (a restore found at
// start) for AuditWarnings until the process ends.
func (db *DB) NoteAuditWarning(msg string) { db.auditWarning.Store(&msg) }

// AuditWarnings lists what a person watching this appliance must know
// about audit trails: its own trail broken, and on a hub the alarms
// raised about enrolled appliances' trails.
func (db *DB) AuditWarnings(ctx context.Context) []string {
	var out []string
	if st := db.AuditState(); st != nil && st.Broken != "" {
		out = append(out, "AUDIT TRAIL BROKEN: "+st.Broken)
	}
	if w := db.auditWarning.Load(); w != nil {
		out = append(out, "AUDIT: "+*w)
	}
	alarms, err := db.CheckpointAlarms(ctx, 5)
	if err != nil {
		out = append(out, "audit alarms unreadable: "+err.Error())
	}
	for _, a := range alarms {
		out = append(out, fmt.Sprintf("AUDIT ALARM for appliance %s at %s: %s", a.Appliance, a.At.UTC().Format(time.RFC3339), a.Reason))
	}
	return out
}

// SplitCheckpoints splits a checkpoint file: signed notes one after another,
// each ending in its signature lines, separated by a blank line.
func SplitCheckpoints(file []byte) [][]byte {
	var out [][]byte
	parts := bytes.Split(file, []byte("\n\n"))
	// A note is text, blank line, signatures: two parts per note.
	for i := 0; i+1 < len(parts); i += 2 {
		n := append(append(bytes.Clone(parts[i]), "\n\n"...), parts[i+1]...)
		if !bytes.HasSuffix(n, []byte("\n")) {
			n = append(n, '\n')
		}
		out = append(out, n)
	}
	return out
}

// Bounds on a checkpoint file: the newest MaxCheckpointsKept are kept,
// and a file larger than MaxCheckpointFile is not read (it is not ours).
const (
	MaxCheckpointsKept = 256
	MaxCheckpointFile  = MaxCheckpointsKept * 2 * MaxCheckpoint
)

// ReadCheckpointFile returns the signed checkpoints in the checkpoint
// file at path, oldest first; none if the file does not exist.
func ReadCheckpointFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCheckpointFile+1))
	if err != nil {
		return nil, fmt.Errorf("read checkpoints %s: %w", path, err)
	}
	if len(b) > MaxCheckpointFile {
		return nil, fmt.Errorf("read checkpoints %s: larger than %d bytes", path, MaxCheckpointFile)
	}
	return SplitCheckpoints(b), nil
}

// VerifyAuditAgainstNewest is VerifyAuditTrail against the newest of
// notes (a checkpoint file's signed checkpoints), its signature checked
// with this appliance's own audit key. It returns that checkpoint (nil
// when notes is empty: the chain alone is checked). A checkpoint that
// does not open is a broken trail: someone forged or damaged the
// anchor. Checking with the key held in the database proves less than
// `passgate audit verify --key` with a copy kept elsewhere, and says so
// nowhere but here: it is the check a page can run.
func (db *DB) VerifyAuditAgainstNewest(ctx context.Context, notes [][]byte) (*AuditVerification, *Checkpoint, error) {
	var cps []*Checkpoint
	if len(notes) > 0 {
		keys, err := db.AuditVerifierKey(ctx)
		if err != nil {
			return &AuditVerification{}, nil, fmt.Errorf("verify audit trail: %w", err)
		}
		vs, err := VerifierKeys(keys)
		if err != nil {
			return &AuditVerification{}, nil, fmt.Errorf("verify audit trail: %w", err)
		}
		cp, err := OpenCheckpoint(notes[len(notes)-1], vs)
		if err != nil {
			aerr := &AuditError{Reason: "the newest checkpoint does not verify: " + err.Error()}
			db.noteAuditBroken(aerr)
			return &AuditVerification{}, nil, aerr
		}
		cps = append(cps, cp)
	}
	v, err := db.VerifyAuditTrail(ctx, cps)
	if len(cps) == 0 {
		return v, nil, err
	}
	return v, cps[0], err
}
