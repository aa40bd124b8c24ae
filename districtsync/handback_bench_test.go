package districtsync

import (
	"encoding/binary"
	"testing"

	"passgate/district"
	"passgate/store"
)

// BenchmarkRevocationsPage measures a whole page of the hub's feed (5,000
// revocations) as a pull after a restart reads it, tags included.
func BenchmarkRevocationsPage(b *testing.B) {
	ctx := b.Context()
	db, err := store.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "Bench", Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		b.Fatal(err)
	}
	for i := range MaxRevocationPage {
		id := make([]byte, 12)
		binary.BigEndian.PutUint64(id, uint64(i))
		if err := db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: id, Reason: "lost"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		page, _, err := db.RevocationsPage(ctx, 0, MaxRevocationPage)
		if err != nil || len(page) != MaxRevocationPage || len(page[0].Tag) != store.RevocationTagSize {
			b.Fatalf("page of %d, %v", len(page), err)
		}
	}
}
