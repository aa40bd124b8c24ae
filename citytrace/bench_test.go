package citytrace

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// BenchmarkAskThirteenDistricts: one city trace asking 13 district hubs
// (each holding the person's 10 checks among 2,000 scans at one gate)
// through one in-process engine, their answers merged.
func BenchmarkAskThirteenDistricts(b *testing.B) {
	ctx := context.Background()
	key := make([]byte, pass.CityKeyLen)
	rand.Read(key)
	person := pass.Pseudonym(key, "11010519491231002X")
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	var ids []string
	var dbs []*store.DB
	for i := range 13 {
		db := hub(b, fmt.Sprintf("district %d", i))
		for j := range 2000 {
			s := pass.Subject{byte(j), byte(j >> 8), 1}
			if j%200 == 0 {
				s = person
			}
			if err := db.LogScan(ctx, &store.Scan{At: t0.Add(time.Duration(j) * 30 * time.Second), Source: "gate", Decision: "allow", Reason: "ok", Subject: s}); err != nil {
				b.Fatal(err)
			}
		}
		ids, dbs = append(ids, districtID(b, db)), append(dbs, db)
	}
	srv := startEngine(b, ids...)
	for i, d := range ids {
		serve(b, srv, connect(b, srv, d, nil), dbs[i], d)
	}
	nc := connect(b, srv, "city", nil)
	for b.Loop() {
		res, err := AskDistricts(ctx, nc, ids, Ask{Asker: "bench", Subjects: []pass.Subject{person}, From: t0, To: t0.Add(48 * time.Hour),
			Window: 15 * time.Minute}, 10*time.Second)
		if err != nil || !res.Complete() || len(res.Checks) != 13*10 {
			b.Fatalf("%v %+v %d", err, res.Missing, len(res.Checks))
		}
	}
}
