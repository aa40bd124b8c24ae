package districtsync

import (
	"bytes"
	"context"

	"passgate/store"
)

// cityKeyFor is the city pseudonym key a pull answer carries: to an
// office only, and only when the check value it sent is not the one of
// the key the hub holds (it has none yet). A gate is never sent it,
// whatever it says it holds.
func cityKeyFor(ctx context.Context, db *store.DB, role store.ApplianceRole, held []byte) ([]byte, error) {
	if role != store.ApplianceOffice {
		return nil, nil
	}
	check, err := db.CityKeyCheckHeld(ctx)
	if err != nil || check == nil || bytes.Equal(check, held) {
		return nil, err
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	return d.CityPseudonymKey, nil
}
