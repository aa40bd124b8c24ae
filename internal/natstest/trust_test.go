package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/citylink"
)

// The engine holds the city's trust records to their senders: a hub
// publishes its own district's trust subject only, never another's nor
// the console's retirements, and drives its own trust consumer only;
// the console publishes retirements and no district's trust.
func TestCluster_TrustPermissions(t *testing.T) {
	c := Start(t, "d1", "d2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, errs := permErrors(t, c, c.SeedFile("d2"), "d2")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, citylink.TrustSubject("d2"), []byte("x")); err != nil {
		t.Fatalf("publish on its own trust subject: %v", err)
	}
	for _, subj := range []string{citylink.TrustSubject("d1"), citylink.RetireSubject} {
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(short, subj, []byte("x"))
		cancelShort()
		if err == nil {
			t.Fatalf("d2 published on %s", subj)
		}
		wantViolation(t, errs, subj)
	}
	for _, subj := range []string{
		"$JS.API.CONSUMER.CREATE." + citylink.StreamName + "." + citylink.TrustConsumerName("d1"),
		"$JS.API.CONSUMER.DELETE." + citylink.StreamName + "." + citylink.TrustConsumerName("d1"),
		"$JS.API.CONSUMER.MSG.NEXT." + citylink.StreamName + "." + citylink.TrustConsumerName("d1"),
	} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, subj)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, citylink.StreamName, jetstream.ConsumerConfig{
		Durable: citylink.TrustConsumerName("d2"), FilterSubjects: []string{citylink.AllTrust, citylink.RetireSubject},
	}); err != nil {
		t.Fatalf("its own trust consumer: %v", err)
	}

	consoleErrs := make(chan error, 16)
	console := c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case consoleErrs <- err:
			default:
			}
		}))
	cjs, err := jetstream.New(console)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cjs.Publish(ctx, citylink.RetireSubject, []byte("x")); err != nil {
		t.Fatalf("the console's retirement: %v", err)
	}
	if err := console.Publish(citylink.TrustSubject("d1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, consoleErrs, citylink.TrustSubject("d1"))

	info, err := c.Stream().Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 || info.State.Subjects[citylink.TrustSubject("d2")] != 1 || info.State.Subjects[citylink.RetireSubject] != 1 {
		t.Fatalf("stream: %d messages, %v; want d2's trust and the console's retirement", info.State.Msgs, info.State.Subjects)
	}
}
