package citystats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"passgate/citylink"
	"passgate/internal/figurestest"
	"passgate/internal/natstest"
	"passgate/store"
)

// BenchmarkAskThirteenDistricts: one refresh of the city dashboard,
// asking 13 district hubs through a three-node cluster, each reading its
// figures and answering.
func BenchmarkAskThirteenDistricts(b *testing.B) {
	var ids []string
	var dbs []*store.DB
	for i := range 13 {
		db, w := figurestest.Hub(b, fmt.Sprintf("district %d", i), 2)
		ids, dbs = append(ids, w.District), append(dbs, db)
	}
	c := natstest.Start(b, ids...)
	for i, d := range ids {
		nc := c.Connect(c.SeedFile(d), nats.CustomInboxPrefix(citylink.InboxPrefix(d)))
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		go Serve(ctx, nc, dbs[i], d, nil) //nolint:errcheck // a failure shows as a district missing
	}
	nc := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := AskDistricts(context.Background(), nc, ids, "bench", 5*time.Second)
		if err == nil && len(res.Missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v %+v", err, res)
		}
	}
	for b.Loop() {
		res, err := AskDistricts(context.Background(), nc, ids, "bench", 5*time.Second)
		if err != nil || len(res.Answers) != 13 {
			b.Fatalf("%v %+v", err, res.Missing)
		}
	}
}
