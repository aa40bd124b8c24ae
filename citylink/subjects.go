// Package citylink joins a district hub to the city tier: a NATS
// JetStream cluster that holds every district's revocations in one
// replicated stream. The hub publishes its district's revocations from a
// durable mark in its store and consumes the other districts' with one
// durable pull consumer; the check path never waits for it.
//
// Who may publish what is enforced twice: by the cluster (each hub's
// user may publish only its district's subjects and drive only its own
// consumer, DistrictPermissions) and by the consumer, which refuses,
// audited, any message that does not belong to the subject it came on.
package citylink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the city stream every district's revocations go to.
const StreamName = "CITY"

// subjectPrefix starts every subject of the city stream.
const subjectPrefix = "city."

// revocationsToken ends a district's revocations subject.
const revocationsToken = ".revocations"

// AllRevocations is the filter over every district's revocations.
const AllRevocations = subjectPrefix + "*" + revocationsToken

// MaxMessage bounds a message on the city stream, enforced by the
// stream (MaxMsgSize) and again by the consumer before parsing. A
// revocation is about 300 bytes; a reason is at most 500.
const MaxMessage = 2048

// DuplicateWindow is how long the stream remembers a Nats-Msg-Id: a hub
// that crashed between the stream's acknowledgement and storing its mark
// republishes on restart, usually within minutes. Beyond the window the
// consumer's own (district, sequence) uniqueness still drops the copy.
const DuplicateWindow = 24 * time.Hour

// Subject is district's revocations subject.
func Subject(district string) string { return subjectPrefix + district + revocationsToken }

// ConsumerName is district's hub's durable consumer.
func ConsumerName(district string) string { return "hub-" + district }

// trustToken ends a district's trust subject.
const trustToken = ".trust"

// TrustSubject is where district's hub publishes its district root's
// city certificate: every hub verifies it against the city root.
func TrustSubject(district string) string { return subjectPrefix + district + trustToken }

// AllTrust is the filter over every district's trust subject.
const AllTrust = subjectPrefix + "*" + trustToken

// RetireSubject is where the city console publishes the city root's
// retirements of district roots; only the console's user may publish it.
const RetireSubject = "citytrust.retirements"

// TrustConsumerName is district's hub's durable consumer of the city's
// trust records (AllTrust and RetireSubject).
func TrustConsumerName(district string) string { return "trust-" + district }

// InboxPrefix is the prefix of district's hub's reply subjects: each
// hub subscribes only under its own, so no hub reads another's replies.
func InboxPrefix(district string) string { return "_INBOX_" + district }

// TracePrefix starts the subject each hub answers the city's trace
// requests on, TracePrefix+district. It is a first token of its own, not
// under "city.": a hub may publish city.<its district>.>, and a district
// named "trace" would otherwise be allowed to send trace requests.
const TracePrefix = "citytrace."

// TraceSubject is the subject district's hub answers trace requests on.
func TraceSubject(district string) string { return TracePrefix + district }

// StatsPrefix starts the subject each hub answers the city console's
// dashboard requests on, StatsPrefix+district: a first token of its own
// for the same reason as TracePrefix.
const StatsPrefix = "citystats."

// StatsSubject is the subject district's hub answers dashboard requests
// on.
func StatsSubject(district string) string { return StatsPrefix + district }

// StatusSubject is where the city console publishes city-wide status
// changes, on the city stream beside the districts' revocations: only
// the console's user may publish it, and every hub consumes it. It is
// not under "city.", which each hub may publish its own district's
// subjects of.
const StatusSubject = "citystatus.changes"

// ConsoleInboxPrefix is the prefix of the city console's reply subjects.
// No district's InboxPrefix can equal it or lie under it ("_INBOX_" plus
// letters, digits and '-'), so no hub reads the answers meant for the
// console.
const ConsoleInboxPrefix = "_CONSOLE_INBOX"

// MaxResponses is how many replies a hub may send to one request it
// received (nats-server's allow_responses): one answer per trace
// request, and no publishing to a reply subject it was never sent.
const MaxResponses = 1

// DistrictPermissions are the subjects district's hub user may publish
// and subscribe to, and nothing else: its own district's subjects, the
// JetStream API calls that read the stream and drive its own two
// consumers (revocations, trust), and acknowledgements of their
// messages; it receives its own district's trace and dashboard requests
// and answers each once (MaxResponses), but cannot ask another
// district's. It cannot create, change, purge or
// delete a stream, touch another hub's consumer, or publish another
// district's subjects. The cluster's configuration (deploy/nats) lists
// exactly these.
func DistrictPermissions(district string) (publish, subscribe []string) {
	publish = []string{
		subjectPrefix + district + ".>",
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + StreamName,
	}
	for _, name := range []string{ConsumerName(district), TrustConsumerName(district)} {
		c := StreamName + "." + name
		publish = append(publish,
			"$JS.API.CONSUMER.CREATE."+c,
			"$JS.API.CONSUMER.CREATE."+c+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+c,
			"$JS.API.CONSUMER.INFO."+c,
			"$JS.API.CONSUMER.DELETE."+c,
			"$JS.API.CONSUMER.MSG.NEXT."+c,
			"$JS.ACK."+c+".>")
	}
	subscribe = []string{InboxPrefix(district) + ".>", TraceSubject(district), StatsSubject(district)}
	return publish, subscribe
}

// ConsolePermissions are the city console's: it sends trace and
// dashboard requests to every district's hub, publishes city-wide status
// changes and the city root's retirements of district roots to the
// stream, and reads the answers and the stream's
// acknowledgements, and nothing else; it cannot publish a district's
// revocations, nor read, change or delete the stream or a consumer.
func ConsolePermissions() (publish, subscribe []string) {
	return []string{TracePrefix + "*", StatsPrefix + "*", StatusSubject, RetireSubject}, []string{ConsoleInboxPrefix + ".>"}
}

// StreamConfig is the city stream: every district's revocations and the
// console's status changes, on
// file, replicated to replicas nodes, kept without age limit (a rebuilt
// hub reads the whole history), never deleted or purged through the API,
// messages bounded, duplicates dropped by message id.
func StreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "passgate: every district's revocations and trust, the city's status changes and retirements",
		Subjects:    []string{AllRevocations, StatusSubject, AllTrust, RetireSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxMsgSize:  MaxMessage,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardNew,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// EnsureStream creates the city stream, or updates it to StreamConfig,
// with an administrator's connection (a hub's user may not).
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	cfg := StreamConfig(replicas)
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("create city stream: %w", err)
	}
	return s, nil
}

// DistrictUser is the nats-server configuration entry of district's hub
// user, known by its public nkey pub, with DistrictPermissions.
func DistrictUser(district, pub string) string {
	p, s := DistrictPermissions(district)
	return fmt.Sprintf("{nkey: %s, permissions: {publish: {allow: [%s]}, subscribe: {allow: [%s]}, allow_responses: {max: %d}}}", pub, quoteList(p), quoteList(s), MaxResponses)
}

// ConsoleUser is the nats-server configuration entry of the city
// console's user, known by its public nkey pub, with ConsolePermissions.
func ConsoleUser(pub string) string {
	p, s := ConsolePermissions()
	return fmt.Sprintf("{nkey: %s, permissions: {publish: {allow: [%s]}, subscribe: {allow: [%s]}}}", pub, quoteList(p), quoteList(s))
}

// quoteList quotes each subject: unquoted, nats-server would read
// "$JS..." as a variable.
func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
