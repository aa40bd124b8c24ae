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

// A trace is asked by the city console only and answered once by the
// district asked: a hub answers the console on its own trace subject,
// but may not ask another district (not even a district named "trace",
// whose revocation subjects city.trace.> once held the trace requests),
// listen on another's trace subject, or publish to a reply subject it
// was not sent; the console may not publish revocations nor read a
// hub's replies.
func TestCluster_TracePermissions(t *testing.T) {
	c := Start(t, "d1", "trace")
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	hub, hubErrs := permErrors(t, c, c.SeedFile("d1"), "d1")
	if _, err := hub.Subscribe(citylink.TraceSubject("d1"), func(m *nats.Msg) { _ = m.Respond([]byte("d1:" + string(m.Data))) }); err != nil {
		t.Fatal(err)
	}
	if err := hub.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := console.Request(citylink.TraceSubject("d1"), []byte("q"), 5*time.Second)
	if err != nil || string(m.Data) != "d1:q" {
		t.Fatalf("the console's request to d1: %v %v", err, m)
	}

	trace, traceErrs := permErrors(t, c, c.SeedFile("trace"), "trace")
	for _, subj := range []string{citylink.TraceSubject("d1"), citylink.TracePrefix + "x", citylink.ConsoleInboxPrefix + ".x"} {
		if err := trace.Publish(subj, []byte("q")); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, traceErrs, subj)
	}
	if _, err := trace.SubscribeSync(citylink.TraceSubject("d1")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, traceErrs, citylink.TraceSubject("d1"))
	// d1 never saw a request from the hub named "trace".
	if err := hub.Publish(citylink.TraceSubject("trace"), []byte("q")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, hubErrs, citylink.TraceSubject("trace"))

	consoleErrs := make(chan error, 16)
	console2 := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case consoleErrs <- err:
			default:
			}
		}))
	for _, subj := range []string{citylink.Subject("d1"), "$JS.API.STREAM.PURGE." + citylink.StreamName} {
		if err := console2.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, consoleErrs, subj)
	}
	if _, err := console2.SubscribeSync(citylink.InboxPrefix("d1") + ".>"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, consoleErrs, citylink.InboxPrefix("d1"))
	info, err := c.Stream().Info(context.Background())
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("stream: %v, %+v; want no message", err, info)
	}
}

// A dashboard request is asked by the city console only and answered by
// the district asked: a hub answers the console on its own dashboard
// subject, but may not ask another district's hub (not even one named
// "stats"), nor listen on another's dashboard subject.
func TestCluster_StatsPermissions(t *testing.T) {
	c := Start(t, "d1", "stats")
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
	hub, hubErrs := permErrors(t, c, c.SeedFile("d1"), "d1")
	got := make(chan string, 4)
	if _, err := hub.Subscribe(citylink.StatsSubject("d1"), func(m *nats.Msg) {
		got <- string(m.Data)
		_ = m.Respond([]byte("d1:" + string(m.Data)))
	}); err != nil {
		t.Fatal(err)
	}
	if err := hub.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := console.Request(citylink.StatsSubject("d1"), []byte("q"), 5*time.Second)
	if err != nil || string(m.Data) != "d1:q" {
		t.Fatalf("the console's request to d1: %v %v", err, m)
	}
	<-got

	other, otherErrs := permErrors(t, c, c.SeedFile("stats"), "stats")
	for _, subj := range []string{citylink.StatsSubject("d1"), citylink.StatsPrefix + "x", citylink.StatsPrefix + "stats"} {
		if err := other.Publish(subj, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, otherErrs, subj)
	}
	if _, err := other.SubscribeSync(citylink.StatsSubject("d1")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, otherErrs, citylink.StatsSubject("d1"))
	if err := hub.Publish(citylink.StatsSubject("stats"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, hubErrs, citylink.StatsSubject("stats"))
	select {
	case m := <-got:
		t.Fatalf("d1's hub received %q from a hub", m)
	case <-time.After(200 * time.Millisecond):
	}
}
