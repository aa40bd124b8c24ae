package natstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
)

// permErrors connects as seedFile and collects the asynchronous errors
// the server sends it (a permission violation is one).
func permErrors(t *testing.T, c *Cluster, seedFile, district string) (*nats.Conn, <-chan error) {
	errs := make(chan error, 16)
	nc := c.Connect(seedFile, nats.CustomInboxPrefix(citylink.InboxPrefix(district)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	return nc, errs
}

func wantViolation(t *testing.T, errs <-chan error, subject string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
			t.Fatalf("got %v, want a permission violation on %s", err, subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permission violation for %s", subject)
	}
}

// The engine holds each district to its own subjects: d2 publishes on
// its own subject (acknowledged by the R3 stream) and is refused on
// d1's, and may not create, purge or delete the stream or drive d1's
// consumer.
func TestCluster_DistrictPermissions(t *testing.T) {
	c := Start(t, "d1", "d2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, errs := permErrors(t, c, c.SeedFile("d2"), "d2")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, citylink.Subject("d2"), []byte("{}"), jetstream.WithMsgID("d2-1"))
	if err != nil || ack.Stream != citylink.StreamName {
		t.Fatalf("publish on its own subject: %v %+v", err, ack)
	}
	if ack, err := js.Publish(ctx, citylink.Subject("d2"), []byte("{}"), jetstream.WithMsgID("d2-1")); err != nil || !ack.Duplicate {
		t.Fatalf("the same message id again: %v %+v, want a duplicate", err, ack)
	}

	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = js.Publish(short, citylink.Subject("d1"), []byte("{}"))
	cancelShort()
	if err == nil {
		t.Fatal("d2 published on d1's subject")
	}
	wantViolation(t, errs, citylink.Subject("d1"))

	for _, subj := range []string{
		"$JS.API.STREAM.CREATE.EVIL", "$JS.API.STREAM.PURGE." + citylink.StreamName,
		"$JS.API.STREAM.DELETE." + citylink.StreamName, "$JS.API.STREAM.UPDATE." + citylink.StreamName,
		"$JS.API.STREAM.MSG.DELETE." + citylink.StreamName,
		"$JS.API.CONSUMER.DELETE." + citylink.StreamName + "." + citylink.ConsumerName("d1"),
		"$JS.API.CONSUMER.CREATE." + citylink.StreamName + "." + citylink.ConsumerName("d1"),
	} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, subj)
	}
	// Its own consumer may not deliver into another district's subject
	// (the server would publish there on its behalf): refused as a cycle.
	_, err = js.CreateOrUpdatePushConsumer(ctx, citylink.StreamName, jetstream.ConsumerConfig{
		Durable: citylink.ConsumerName("d2"), DeliverSubject: citylink.Subject("d1"), FilterSubject: citylink.AllRevocations,
	})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("a consumer delivering into d1's subject: %v, want refused as a cycle", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, citylink.StreamName, jetstream.ConsumerConfig{
		Durable: citylink.ConsumerName("d2"), FilterSubject: citylink.AllRevocations,
	}); err != nil {
		t.Fatalf("its own pull consumer: %v", err)
	}
	// Nor may it read another hub's replies.
	if _, err := nc.SubscribeSync(citylink.InboxPrefix("d1") + ".x"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, citylink.InboxPrefix("d1"))

	info, err := c.Stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || info.Config.Replicas != Size {
		t.Fatalf("stream holds %d messages at R%d, want 1 at R%d", info.State.Msgs, info.Config.Replicas, Size)
	}
}

// With one node down the R3 stream still takes and keeps messages, and
// the node that comes back catches up.
func TestCluster_NodeDownAndBack(t *testing.T) {
	c := Start(t, "d1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := jetstream.New(c.Connect(c.SeedFile("d1"), nats.CustomInboxPrefix(citylink.InboxPrefix("d1"))))
	if err != nil {
		t.Fatal(err)
	}
	c.WaitCurrent(30 * time.Second)
	c.StopNode(0)
	if _, err := js.Publish(ctx, citylink.Subject("d1"), []byte("{}"), jetstream.WithMsgID("d1-1"), jetstream.WithRetryAttempts(50)); err != nil {
		t.Fatalf("publish with a node down: %v", err)
	}
	c.RestartNode(0)
	c.WaitCurrent(30 * time.Second)
	info, err := c.Stream().Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("after the node came back: %v %+v", err, info)
	}
}
