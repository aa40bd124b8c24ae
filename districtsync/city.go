package districtsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"passgate/pass"
	"passgate/store"
)

// The city root travels in the hub's trust list, beside the district
// roots whose city records (in their Cert) it verifies; the appliance
// judges both when it applies the list (store.ApplyFeed).

// CityKey is the city root in a trust list: public half only.
type CityKey struct {
	City   string `json:"city"`
	Alg    int    `json:"alg"`
	Public []byte `json:"public"`
}

// maxCityLen bounds a city's identifier.
const maxCityLen = 64

// withCity adds the hub's city root, if it trusts one, to t, and folds
// it into t.Hash (a list without a city hashes as before).
func withCity(ctx context.Context, db *store.DB, t *TrustList) error {
	c, err := db.CityRoot(ctx)
	if errors.Is(err, store.ErrNoCityRoot) {
		return nil
	}
	if err != nil {
		return err
	}
	t.City = &CityKey{City: c.City, Alg: int(c.Key.Alg), Public: bytes.Clone(c.Key.Raw)}
	t.Hash = trustHashCity(t.Hash, t.City)
	return nil
}

// trustHashCity is SHA-256 over a domain string, the hash of the keys,
// and the city's identifier, algorithm and public key, each
// variable-length field preceded by its length.
func trustHashCity(keysHash []byte, c *CityKey) []byte {
	h := sha256.New()
	h.Write([]byte("passgate-trust-city-v1"))
	h.Write(keysHash)
	field := func(b []byte) {
		h.Write([]byte{byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))})
		h.Write(b)
	}
	field([]byte(c.City))
	field([]byte{byte(c.Alg >> 24), byte(c.Alg >> 16), byte(c.Alg >> 8), byte(c.Alg)})
	field(c.Public)
	return h.Sum(nil)
}

// trustFromWire checks and converts a trust list (keys and city root)
// against its hash.
func trustFromWire(t *TrustList) ([]*store.Key, *store.CityRoot, error) {
	keys, err := TrustKeysFromWire(t.Keys)
	if err != nil {
		return nil, nil, err
	}
	want := TrustHash(keys)
	var city *store.CityRoot
	if t.City != nil {
		if t.City.City == "" || len(t.City.City) > maxCityLen {
			return nil, nil, errors.New("trust list: malformed city")
		}
		k, err := pass.ParsePublicKey(pass.Alg(t.City.Alg), t.City.Public)
		if err != nil {
			return nil, nil, fmt.Errorf("trust list: city root: %w", err)
		}
		city = &store.CityRoot{City: t.City.City, Key: k}
		want = trustHashCity(want, t.City)
	}
	if !bytes.Equal(want, t.Hash) {
		return nil, nil, errors.New("trust list does not match its hash")
	}
	return keys, city, nil
}

// withoutCityRoots leaves out the other districts' roots that come with
// a city record: an appliance takes those only through its feed, which
// checks the record.
func withoutCityRoots(keys []*store.Key, district string) []*store.Key {
	out := keys[:0:0]
	for _, k := range keys {
		if k.Role == store.RoleRoot && k.District != district && len(k.Cert) > 0 {
			continue
		}
		out = append(out, k)
	}
	return out
}
