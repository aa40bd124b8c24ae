package citylink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"passgate/store"
)

// Timings of the link. None of them is on a gate's path: a dead cluster
// only delays what the hub shares with the city and takes from it.
const (
	publishEvery = 250 * time.Millisecond // how often the outbox is looked at
	publishBatch = 256                    // revocations published before their acknowledgements are awaited
	ackWait      = 10 * time.Second       // how long a batch's acknowledgements are awaited
	fetchBatch   = 256
	fetchWait    = 2 * time.Second
	retryWait    = time.Second // after a failure, before trying again
	// consumerAck is how long the cluster waits for a delivered message's
	// acknowledgement before delivering it again. A batch handed to a
	// fetch that a lost node or connection never completed waits this
	// long, so it bounds how late a revocation arrives after a failure;
	// storing a batch takes milliseconds, and a copy is stored once.
	consumerAck   = 5 * time.Second
	maxAckPending = 1024
)

// Config is what a hub's link to the city is made from.
type Config struct {
	// URLs are the cluster's nodes, comma-separated (nats:// or tls://).
	URLs string
	// SeedFile holds the hub user's nkey seed (mode 0600): the cluster
	// knows the district by it and holds it to its own subjects.
	SeedFile string
	// CAFile, if set, is the PEM CA the cluster's TLS certificates are
	// checked against.
	CAFile string
	// Answer, if set, runs on the link's connection for as long as the
	// link runs, and again after it fails: the hub answering the city's
	// trace and dashboard requests (citytrace.Serve and citystats.Serve,
	// joined by Answerers). It returns when ctx ends.
	Answer func(ctx context.Context, nc *nats.Conn, db *store.DB, district string) error
}

// Check reads cfg's credentials file and looks for its CA file, so that
// a mistake stops the command at once rather than in every reconnect.
func (cfg Config) Check() error {
	if cfg.URLs == "" || cfg.SeedFile == "" {
		return errors.New("city link: the cluster's URLs and a credentials file are required")
	}
	if _, err := nats.NkeyOptionFromSeed(cfg.SeedFile); err != nil {
		return fmt.Errorf("city link: credentials: %w", err)
	}
	if cfg.CAFile != "" {
		if _, err := os.Stat(cfg.CAFile); err != nil {
			return fmt.Errorf("city link: CA: %w", err)
		}
	}
	return nil
}

// Dial connects to the cluster as cfg's nkey user, named name, with its
// replies under inboxPrefix (the only inbox the user may read), over TLS
// checked against cfg's CA when given. The connection retries a failed
// first connect and reconnects for ever: the district, or the console,
// keeps working while the city is down. opts come last.
func Dial(cfg Config, name, inboxPrefix string, opts ...nats.Option) (*nats.Conn, error) {
	nkey, err := nats.NkeyOptionFromSeed(cfg.SeedFile)
	if err != nil {
		return nil, fmt.Errorf("connect to the city: credentials: %w", err)
	}
	o := []nats.Option{nkey, nats.Name(name), nats.CustomInboxPrefix(inboxPrefix),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	if cfg.CAFile != "" {
		o = append(o, nats.RootCAs(cfg.CAFile))
	}
	nc, err := nats.Connect(cfg.URLs, append(o, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to the city: %w", err)
	}
	return nc, nil
}

// Link is a hub's link to the city stream: it publishes the district's
// revocations and stores every district's in the hub's store.
type Link struct {
	cfg      Config
	db       *store.DB
	log      *slog.Logger
	district string

	connected atomic.Bool
	published atomic.Int64 // revocations the stream acknowledged
	stored    atomic.Int64 // revocations taken from the stream
	refused   atomic.Int64
	lag       atomic.Int64 // messages on the stream after the last one applied
	lastPubMS atomic.Int64
	lastErr   atomic.Value // string
}

// New checks cfg (the credentials file is read); the link connects
// when it runs.
func New(cfg Config) (*Link, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &Link{cfg: cfg, log: slog.New(slog.DiscardHandler)}, nil
}

// Run links the hub whose store is db to the city until ctx ends.
// Failures are logged and retried, never returned: the district works
// without the city. It runs once per Link.
func (l *Link) Run(ctx context.Context, db *store.DB, log *slog.Logger) {
	l.db = db
	if log != nil {
		l.log = log.With("part", "city")
	}
	if _, err := l.db.SyncHubInfo(ctx); err == nil {
		l.fail("city link not started", store.ErrNotHub)
		return
	}
	for ctx.Err() == nil {
		err := l.run(ctx)
		if err != nil && ctx.Err() == nil {
			l.fail("city link", err)
			sleep(ctx, retryWait)
		}
	}
}

func (l *Link) run(ctx context.Context) error {
	d, err := l.db.District(ctx)
	if err != nil {
		return err
	}
	l.district = d.ID
	nc, err := l.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.publishLoop(ctx, js)
	}()
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		l.answerLoop(ctx, nc)
	}()
	trusted := make(chan struct{})
	go func() {
		defer close(trusted)
		l.trustLoop(ctx, js)
	}()
	l.consumeLoop(ctx, js)
	<-done
	<-answered
	<-trusted
	return nil
}

// answerLoop runs cfg.Answer on nc until ctx ends; a failure (the
// cluster unreachable when it subscribes) is logged and tried again.
func (l *Link) answerLoop(ctx context.Context, nc *nats.Conn) {
	if l.cfg.Answer == nil {
		return
	}
	for ctx.Err() == nil {
		if err := l.cfg.Answer(ctx, nc, l.db, l.district); err != nil && ctx.Err() == nil {
			l.fail("answer the city's traces", err)
			sleep(ctx, retryWait)
		}
	}
}

// connect dials the cluster as the district's hub; the connection
// reconnects by itself for as long as the link runs.
func (l *Link) connect() (*nats.Conn, error) {
	nc, err := Dial(l.cfg, "passgate hub "+l.district, InboxPrefix(l.district),
		nats.ConnectHandler(func(c *nats.Conn) { l.up(c) }),
		nats.ReconnectHandler(func(c *nats.Conn) { l.up(c) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			l.connected.Store(false)
			if err != nil {
				l.fail("city cluster disconnected", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { l.fail("city cluster", err) }),
	)
	if err != nil {
		return nil, err
	}
	if nc.IsConnected() {
		l.up(nc)
	}
	return nc, nil
}

func (l *Link) up(c *nats.Conn) {
	if !l.connected.Swap(true) {
		l.log.Info("connected to the city", "server", c.ConnectedUrlRedacted(), "district", l.district)
	}
}

func (l *Link) fail(msg string, err error) {
	l.lastErr.Store(err.Error())
	l.log.Warn(msg, "err", err)
}

// publishLoop publishes the district's revocations the stream has not
// acknowledged, oldest first, and moves the mark past each acknowledged
// run: a crash between the acknowledgement and the mark republishes,
// and the stream drops the copy by its message id.
func (l *Link) publishLoop(ctx context.Context, js jetstream.JetStream) {
	t := time.NewTicker(publishEvery)
	defer t.Stop()
	for {
		n, err := l.publishOnce(ctx, js)
		if err != nil && ctx.Err() == nil {
			l.fail("publish to the city", err)
			sleep(ctx, retryWait)
			continue
		}
		if n == publishBatch {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishOnce publishes one batch and returns how many it published.
func (l *Link) publishOnce(ctx context.Context, js jetstream.JetStream) (int, error) {
	district, list, err := l.db.CityPending(ctx, publishBatch)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(list))
	for _, r := range list {
		b, err := Encode(district, r)
		if err != nil {
			return 0, err
		}
		m := nats.NewMsg(Subject(district))
		m.Data = b
		m.Header.Set(jetstream.MsgIDHeader, MsgID(district, r.Seq))
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			break // what was sent is awaited; the rest goes next time
		}
		futures = append(futures, f)
	}
	// The mark moves past the acknowledged run from the start only: a
	// gap would be skipped for ever.
	var mark int64
	timeout := time.NewTimer(ackWait)
	defer timeout.Stop()
	var failed error
wait:
	for i, f := range futures {
		select {
		case <-f.Ok():
			mark = list[i].Seq
		case err := <-f.Err():
			failed = err
			break wait
		case <-timeout.C:
			failed = errors.New("no acknowledgement from the city stream")
			break wait
		case <-ctx.Done():
			failed = ctx.Err()
			break wait
		}
	}
	if mark > 0 {
		if err := l.db.MarkCityPublished(context.WithoutCancel(ctx), mark); err != nil {
			return 0, err
		}
		n := 0
		for _, r := range list {
			if r.Seq <= mark {
				n++
			}
		}
		l.published.Add(int64(n))
		l.lastPubMS.Store(time.Now().UnixMilli())
	}
	if failed != nil {
		return 0, failed
	}
	return len(futures), nil
}

// consumeLoop takes every district's revocations from the hub's durable
// consumer until ctx ends.
func (l *Link) consumeLoop(ctx context.Context, js jetstream.JetStream) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := l.consumer(ctx, js)
			if err != nil {
				l.fail("city consumer", err)
				sleep(ctx, retryWait)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			l.fail("fetch from the city", err)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			sleep(ctx, retryWait)
			continue
		}
		var msgs []jetstream.Msg
		flush := func() bool {
			if len(msgs) == 0 {
				return true
			}
			err := l.apply(ctx, msgs)
			if err != nil {
				l.fail("store city revocations", err)
				for _, m := range msgs {
					_ = m.Nak()
				}
				sleep(ctx, retryWait)
			}
			msgs = msgs[:0]
			return err == nil
		}
		for m := range batch.Messages() {
			msgs = append(msgs, m)
			// Store what has arrived once the fetch pauses: a burst goes
			// in few transactions, a lone revocation at once.
			if len(batch.Messages()) == 0 && !flush() {
				break
			}
		}
		flush()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			l.fail("fetch from the city", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				cons = nil
			}
			sleep(ctx, retryWait)
		}
	}
}

// consumedSubjects are what a hub's revocations consumer reads: every
// district's revocations and the city console's status changes.
var consumedSubjects = []string{AllRevocations, StatusSubject}

// consumer finds or makes the hub's durable consumer. It starts after
// the last stream sequence the hub's store holds; a consumer the cluster
// holds past that (the hub's store was lost and rebuilt, or restored
// from a backup) is made again from there, so the hub reads what it
// lost.
func (l *Link) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	pos, err := l.db.CityPosition(ctx)
	if err != nil {
		return nil, err
	}
	name := ConsumerName(l.district)
	c, err := js.Consumer(ctx, StreamName, name)
	switch {
	case err == nil && c.CachedInfo().AckFloor.Stream <= pos:
		if cfg := c.CachedInfo().Config; cfg.AckWait != consumerAck || !slices.Equal(cfg.FilterSubjects, consumedSubjects) {
			// Made by an older passgate: the ack wait, and the city's
			// status changes besides the districts' revocations.
			cfg.AckWait, cfg.FilterSubject, cfg.FilterSubjects = consumerAck, "", consumedSubjects
			return js.UpdateConsumer(ctx, StreamName, cfg)
		}
		return c, nil
	case err == nil:
		l.log.Warn("the city consumer is past this hub's store: reading the stream again from the store's position",
			"consumer_at", c.CachedInfo().AckFloor.Stream, "store_at", pos)
		if err := js.DeleteConsumer(ctx, StreamName, name); err != nil {
			return nil, err
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "passgate hub of district " + l.district,
		FilterSubjects: consumedSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        consumerAck,
		MaxAckPending:  maxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if pos > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	return js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
}

// apply stores messages in the hub's store in one transaction and
// acknowledges them after the commit. A hostile message is refused
// (audited in the store) and acknowledged too: it is never delivered
// again.
func (l *Link) apply(ctx context.Context, msgs []jetstream.Msg) error {
	batch := make([]store.CityMessage, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		l.lag.Store(int64(md.NumPending))
		cm := store.CityMessage{StreamSeq: md.Sequence.Stream}
		if m.Subject() == StatusSubject {
			if cm.Status, err = ParseStatus(m.Data()); err != nil {
				cm.Refused = err.Error()
			}
		} else if cm.SubjectDistrict, err = SubjectDistrict(m.Subject()); err != nil {
			cm.SubjectDistrict, cm.Refused = "?", err.Error()
		} else if cm.Revocation, err = Parse(m.Data()); err != nil {
			cm.Refused = err.Error()
		}
		batch = append(batch, cm)
	}
	outs, err := l.db.ApplyCityMessages(context.WithoutCancel(ctx), batch)
	if err != nil {
		return err
	}
	for i, out := range outs {
		switch out {
		case store.CityStored:
			l.stored.Add(1)
		case store.CityRefused:
			l.refused.Add(1)
			l.log.Warn("refused a city message", "stream_seq", batch[i].StreamSeq, "subject", msgs[i].Subject())
		}
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Status is the link's state, for the hub's metrics and logs.
type Status struct {
	District    string
	Connected   bool
	Published   int64
	Stored      int64
	Refused     int64
	Lag         int64
	LastPublish time.Time
	LastError   string
}

// Status reads the link's state.
func (l *Link) Status() Status {
	s := Status{District: l.district, Connected: l.connected.Load(), Published: l.published.Load(),
		Stored: l.stored.Load(), Refused: l.refused.Load(), Lag: l.lag.Load()}
	if ms := l.lastPubMS.Load(); ms > 0 {
		s.LastPublish = time.UnixMilli(ms)
	}
	s.LastError, _ = l.lastErr.Load().(string)
	return s
}

var (
	descConnected = prometheus.NewDesc("passgate_city_connected", "1 while the hub is connected to the city cluster.", nil, nil)
	descPublished = prometheus.NewDesc("passgate_city_published_total", "This district's revocations the city stream acknowledged since start.", nil, nil)
	descStored    = prometheus.NewDesc("passgate_city_stored_total", "Revocations taken from the city stream since start.", nil, nil)
	descRefused   = prometheus.NewDesc("passgate_city_refused_total", "City messages refused (audited) since start.", nil, nil)
	descLag       = prometheus.NewDesc("passgate_city_lag_messages", "Messages on the city stream after the last one this hub applied.", nil, nil)
	descLastPub   = prometheus.NewDesc("passgate_city_last_publish_timestamp_seconds", "When the city stream last acknowledged this district's revocations.", nil, nil)
)

// Describe is part of prometheus.Collector.
func (l *Link) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descPublished, descStored, descRefused, descLag, descLastPub} {
		ch <- d
	}
}

// Collect is part of prometheus.Collector: the link's state when scraped.
func (l *Link) Collect(ch chan<- prometheus.Metric) {
	s := l.Status()
	up := 0.0
	if s.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(descStored, prometheus.CounterValue, float64(s.Stored))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.Refused))
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.Lag))
	var last float64
	if !s.LastPublish.IsZero() {
		last = float64(s.LastPublish.UnixMilli()) / 1000
	}
	ch <- prometheus.MustNewConstMetric(descLastPub, prometheus.GaugeValue, last)
}
