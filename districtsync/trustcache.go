package districtsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"passgate/store"
)

// trustHistory bounds the past lists a hub remembers to answer with a
// delta: an appliance further behind (or one that last pulled from
// another hub database) gets the whole list.
const trustHistory = 32

// trustCache is a hub's trust list, built once per trust version instead
// of on every pull (2,000 keys take 10 ms to read and hash), with the
// key digests of the last trustHistory lists so a pull can be answered
// with what changed since the appliance's list.
type trustCache struct {
	mu      sync.Mutex
	cur     *trustSnapshot
	past    []*trustSnapshot       // oldest first, at most trustHistory
	deltas  map[string]*TrustDelta // from a base hash to cur, made once
	rebuilt int                    // lists built, for tests
}

// trustSnapshot is one version of the list.
type trustSnapshot struct {
	version int64
	list    *TrustList          // nil in past snapshots: only digests are kept
	hash    []byte              // the list's TrustHash
	digests map[string][32]byte // key ID → digest of the key's every field
}

// current returns the list of trust version pos.TrustVersion or newer,
// rebuilding it when the version moved. The lock is held while building, so pulls
// arriving together build it once.
func (c *trustCache) current(ctx context.Context, db *store.DB, pos *store.FeedPositions) (*trustSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.version >= pos.TrustVersion {
		return c.cur, nil
	}
	keys, version, err := db.TrustKeysVersion(ctx)
	if err != nil {
		return nil, err
	}
	snap := newTrustSnapshot(keys, version)
	// The city root is part of the list (and of its hash): a change to it
	// bumps the trust version too.
	if err := withCity(ctx, db, snap.list); err != nil {
		return nil, err
	}
	snap.hash = snap.list.Hash
	c.rebuilt++
	c.install(snap)
	return c.cur, nil
}

// install makes snap the current list, the one before it a past one;
// the caller holds c.mu.
func (c *trustCache) install(snap *trustSnapshot) {
	if c.cur != nil && bytes.Equal(c.cur.hash, snap.hash) {
		// A change that leaves the list as it was (a private half
		// resealed): same list, newer version.
		c.cur.version = snap.version
		return
	}
	if c.cur != nil {
		old := *c.cur
		old.list = nil
		c.past = append(c.past, &old)
		if len(c.past) > trustHistory {
			c.past = slices.Delete(c.past, 0, len(c.past)-trustHistory)
		}
	}
	c.cur, c.deltas = snap, make(map[string]*TrustDelta)
}

// newTrustSnapshot builds the list of keys and its digests.
func newTrustSnapshot(keys []*store.Key, version int64) *trustSnapshot {
	s := &trustSnapshot{version: version, list: &TrustList{Hash: TrustHash(keys), Keys: make([]TrustKey, 0, len(keys))},
		digests: make(map[string][32]byte, len(keys))}
	s.hash = s.list.Hash
	for _, k := range keys {
		s.list.Keys = append(s.list.Keys, TrustKeyToWire(k))
		s.digests[string(k.KID[:])] = [32]byte(TrustHash([]*store.Key{k}))
	}
	return s
}

// delta is what changed from the list whose hash is base to cur; false
// when base is not a list this hub remembers.
func (c *trustCache) delta(cur *trustSnapshot, base []byte) (*TrustDelta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != cur {
		return nil, false // rebuilt meanwhile: the caller sends cur whole
	}
	if d, ok := c.deltas[string(base)]; ok {
		return d, true
	}
	var from *trustSnapshot
	for _, p := range c.past {
		if bytes.Equal(p.hash, base) {
			from = p
		}
	}
	if from == nil {
		return nil, false
	}
	d := &TrustDelta{Base: bytes.Clone(base), Hash: cur.hash, Version: cur.version, City: cur.list.City}
	for i := range cur.list.Keys {
		k := &cur.list.Keys[i]
		if old, ok := from.digests[string(k.KID)]; !ok || old != cur.digests[string(k.KID)] {
			d.Add = append(d.Add, *k)
		}
	}
	for id := range from.digests {
		if _, ok := cur.digests[id]; !ok {
			d.Remove = append(d.Remove, []byte(id))
		}
	}
	slices.SortFunc(d.Remove, bytes.Compare)
	c.deltas[string(base)] = d
	return d, true
}

// answerTrust puts into resp what the appliance needs of the trust list:
// nothing when its hash is the hub's, a delta when it asked for one and
// the hub remembers its list, else the whole list.
func (c *trustCache) answerTrust(ctx context.Context, db *store.DB, pos *store.FeedPositions, req *PullRequest, resp *PullResponse) error {
	cur, err := c.current(ctx, db, pos)
	if err != nil {
		return err
	}
	resp.TrustVersion = cur.version
	switch {
	case bytes.Equal(cur.hash, req.TrustHash):
	case req.Deltas && len(req.TrustHash) == sha256.Size:
		if d, ok := c.delta(cur, req.TrustHash); ok {
			resp.TrustDelta = d
			return nil
		}
		resp.Trust = cur.list
	default:
		resp.Trust = cur.list
	}
	return nil
}

// ApplyTrustDelta rebuilds the hub's whole list from the keys held here
// and d, and checks it against d.Hash exactly as a whole list is checked
// (FeedFromWire): a delta can only give the list the hub's whole list
// is. held is this appliance's trust list (TrustKeys) and applied the
// hash of the list it last applied. An error means the delta cannot be
// used: the appliance asks for the whole list.
func ApplyTrustDelta(held []*store.Key, applied []byte, d *TrustDelta) (*TrustList, error) {
	if !bytes.Equal(d.Base, applied) {
		return nil, fmt.Errorf("trust delta from another list than the one applied here")
	}
	if len(d.Add) > maxTrustKeys || len(d.Remove) > maxTrustKeys {
		return nil, fmt.Errorf("trust delta of %d keys added and %d removed", len(d.Add), len(d.Remove))
	}
	byID := make(map[string]TrustKey, len(held)+len(d.Add))
	for _, k := range held {
		byID[string(k.KID[:])] = TrustKeyToWire(k)
	}
	for _, id := range d.Remove {
		delete(byID, string(id))
	}
	for _, k := range d.Add {
		byID[string(k.KID)] = k
	}
	if len(byID) > maxTrustKeys {
		return nil, fmt.Errorf("trust list of %d keys", len(byID))
	}
	list := &TrustList{Hash: d.Hash, Keys: make([]TrustKey, 0, len(byID)), City: d.City}
	for _, k := range byID {
		list.Keys = append(list.Keys, k)
	}
	slices.SortFunc(list.Keys, func(a, b TrustKey) int { return bytes.Compare(a.KID, b.KID) })
	keys, err := TrustKeysFromWire(list.Keys)
	if err != nil {
		return nil, err
	}
	want := TrustHash(keys)
	if d.City != nil {
		want = trustHashCity(want, d.City)
	}
	if !bytes.Equal(want, d.Hash) {
		return nil, fmt.Errorf("trust list rebuilt from a delta does not match its hash")
	}
	return list, nil
}
