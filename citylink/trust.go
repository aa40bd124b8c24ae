package citylink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/pass"
	"passgate/store"
)

// The city's trust records on the city stream: a hub publishes the
// city's certificates of its own district's roots to its trust subject,
// the console publishes the city root's retirements, and every hub
// applies both with its second durable consumer, each verified against
// the city root the hub holds.

// Timings of the trust records: a certificate is imported by hand, a
// few times a year; a few seconds to reach the city is plenty.
const (
	trustEvery      = 2 * time.Second // how often the store is looked at for a new certificate, or a city root
	trustFetchBatch = 64
)

// TrustSubjectDistrict is the district whose trust subject subj is.
func TrustSubjectDistrict(subj string) (string, error) {
	return subjectDistrict(subj, trustToken, "trust")
}

// TrustMsgID is the message id of a city record: its digest, so that the
// same record published again, by the same hub or after its store was
// restored, is stored once by the stream.
func TrustMsgID(digest store.CityTrustDigest) string {
	return "trust-" + hex.EncodeToString(digest[:])
}

// trustLoop publishes this district's certificates and applies the
// city's trust records until ctx ends.
func (l *Link) trustLoop(ctx context.Context, js jetstream.JetStream) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.publishTrustLoop(ctx, js)
	}()
	l.consumeTrustLoop(ctx, js)
	<-done
}

// publishTrustLoop publishes every certificate of this district's roots
// once when the link starts (the stream drops a copy it holds by its
// message id, every hub one it applied already), then each new one once
// the stream acknowledged it.
func (l *Link) publishTrustLoop(ctx context.Context, js jetstream.JetStream) {
	all := true
	for ctx.Err() == nil {
		district, list, err := l.db.CityTrustToPublish(ctx, all)
		for _, r := range list {
			if err != nil {
				break
			}
			m := nats.NewMsg(TrustSubject(district))
			m.Data = r.Record
			m.Header.Set(jetstream.MsgIDHeader, TrustMsgID(r.Digest))
			pctx, cancel := context.WithTimeout(ctx, ackWait)
			_, err = js.PublishMsg(pctx, m)
			cancel()
			if err == nil {
				err = l.db.MarkCityTrustPublished(context.WithoutCancel(ctx), r.Digest)
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				l.fail("publish a city certificate", err)
			}
		} else {
			all = false
		}
		sleep(ctx, trustEvery)
	}
}

// consumeTrustLoop applies the city's trust records from the hub's
// trust consumer. Without a city root it reads nothing: the records are
// left on the stream, not refused, and read once the admin trusts the
// city root.
func (l *Link) consumeTrustLoop(ctx context.Context, js jetstream.JetStream) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			if _, err := l.db.CityRoot(ctx); errors.Is(err, store.ErrNoCityRoot) {
				sleep(ctx, trustEvery)
				continue
			}
			c, err := l.trustConsumer(ctx, js)
			if err != nil {
				l.fail("city trust consumer", err)
				sleep(ctx, retryWait)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(trustFetchBatch, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if err = l.applyTrust(ctx, msgs); err != nil {
				for _, m := range msgs {
					_ = m.Nak()
				}
			} else if err = batch.Error(); errors.Is(err, nats.ErrTimeout) {
				err = nil
			}
		}
		if err != nil && ctx.Err() == nil {
			l.fail("city trust records", err)
			cons = nil // made again from the store's position
			sleep(ctx, retryWait)
		}
	}
}

// trustConsumer finds or makes the hub's trust consumer from the
// store's position.
func (l *Link) trustConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	pos, err := l.db.CityTrustPosition(ctx)
	if err != nil {
		return nil, err
	}
	return l.durable(ctx, js, pos, jetstream.ConsumerConfig{
		Durable:        TrustConsumerName(l.district),
		Description:    "passgate hub of district " + l.district + ": the city's trust records",
		FilterSubjects: []string{AllTrust, RetireSubject},
	})
}

// durable finds the durable consumer cfg names or makes it from cfg,
// delivering from after pos, the last stream sequence the hub's store
// holds; one the cluster holds past pos (the store was rebuilt, or
// restored from a backup) is made again from pos, so the hub reads what
// it lost. Acknowledgements are explicit and awaited consumerAck.
func (l *Link) durable(ctx context.Context, js jetstream.JetStream, pos uint64, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, StreamName, cfg.Durable)
	switch {
	case err == nil && c.CachedInfo().AckFloor.Stream <= pos:
		return c, nil
	case err == nil:
		l.log.Warn("a city consumer is past this hub's store: reading the stream again from the store's position",
			"consumer", cfg.Durable, "consumer_at", c.CachedInfo().AckFloor.Stream, "store_at", pos)
		if err := js.DeleteConsumer(ctx, StreamName, cfg.Durable); err != nil {
			return nil, err
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, err
	}
	cfg.AckPolicy, cfg.AckWait, cfg.MaxAckPending = jetstream.AckExplicitPolicy, consumerAck, maxAckPending
	cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	if pos > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	return js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
}

// applyTrust applies msgs in one transaction and acknowledges them after
// the commit; a refused one (audited in the store) is acknowledged too,
// never delivered again.
func (l *Link) applyTrust(ctx context.Context, msgs []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := make([]store.CityTrustMessage, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		cm := store.CityTrustMessage{StreamSeq: md.Sequence.Stream, Record: m.Data()}
		if m.Subject() == RetireSubject {
			cm.Retirement = true
		} else if cm.SubjectDistrict, err = TrustSubjectDistrict(m.Subject()); err != nil {
			cm.SubjectDistrict, cm.Refused = "?", err.Error()
		}
		if len(cm.Record) > pass.MaxCityRecordLen {
			cm.Record, cm.Refused = nil, fmt.Sprintf("%d bytes, over %d", len(m.Data()), pass.MaxCityRecordLen)
		}
		batch = append(batch, cm)
	}
	outs, err := l.db.ApplyCityTrustMessages(context.WithoutCancel(ctx), batch)
	if err != nil {
		return err
	}
	for i, out := range outs {
		if out == store.CityRefused {
			l.refused.Add(1)
			l.log.Warn("refused a city trust record", "stream_seq", batch[i].StreamSeq, "subject", msgs[i].Subject())
		}
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	return nil
}

// PublishRetirement publishes the city root's retirement of a district
// root, record (a `passgate city retire` file), to RetireSubject on the
// console's connection nc, and waits for the stream's acknowledgement.
// The record is checked first against city, the city root's public
// half: what is not a retirement signed by it is never sent. It returns
// the stream sequence; a record published already is not stored twice.
func PublishRetirement(ctx context.Context, nc *nats.Conn, city *pass.PublicKey, record []byte) (*pass.CityRecord, uint64, error) {
	r, err := CheckRetirement(city, record)
	if err != nil {
		return nil, 0, fmt.Errorf("publish retirement: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, 0, fmt.Errorf("publish retirement: %w", err)
	}
	m := nats.NewMsg(RetireSubject)
	m.Data = record
	m.Header.Set(jetstream.MsgIDHeader, TrustMsgID(sha256.Sum256(record)))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return nil, 0, fmt.Errorf("publish retirement: %w", err)
	}
	return r, ack.Sequence, nil
}

// CheckRetirement parses record, outside bytes, as a retirement the city
// root city signed.
func CheckRetirement(city *pass.PublicKey, record []byte) (*pass.CityRecord, error) {
	r, err := pass.ParseCityRecord(record, city)
	if err != nil {
		return nil, err
	}
	if r.Kind != pass.CityRetire {
		return nil, fmt.Errorf("a %s record, not a retirement", r.Kind)
	}
	return r, nil
}
