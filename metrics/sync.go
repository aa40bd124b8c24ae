package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"passgate/store"
)

// syncCollector reports district sync at scrape time: on an enrolled
// appliance its link to the hub (last exchanges, records waiting, age of
// its lists); on a hub every appliance's last contact, backlog, clock
// offset and how far behind the revocation list it is. A standalone
// appliance reports enrolled 0 and nothing else.
type syncCollector struct {
	db  *store.DB
	now func() time.Time
}

var (
	syncEnrolledDesc = prometheus.NewDesc(namespace+"_sync_enrolled",
		"1 when this appliance is enrolled with a district hub.", nil, nil)
	syncLastPushDesc = prometheus.NewDesc(namespace+"_sync_last_push_timestamp_seconds",
		"When records were last acknowledged by the hub (network or bundle); absent before the first time.", nil, nil)
	syncLastPullDesc = prometheus.NewDesc(namespace+"_sync_last_pull_timestamp_seconds",
		"When trust, revocations and policy were last received from the hub; absent before the first time.", nil, nil)
	syncListsAgeDesc = prometheus.NewDesc(namespace+"_sync_lists_age_seconds",
		"Seconds since the lists were last received from the hub (since enrolment before the first pull).", nil, nil)
	syncWaitingDesc = prometheus.NewDesc(namespace+"_sync_outbox_records",
		"Records waiting for the hub's acknowledgement, by stream (scans, events).", []string{"stream"}, nil)
	syncErrorDesc = prometheus.NewDesc(namespace+"_sync_last_error_timestamp_seconds",
		"When the last sync error happened; absent when there was none.", nil, nil)

	hubApplianceDesc = prometheus.NewDesc(namespace+"_hub_appliance_info",
		"Always 1, one series per appliance registered with this hub; state is pending, active or retired.",
		[]string{"appliance", "state"}, nil)
	hubContactDesc = prometheus.NewDesc(namespace+"_hub_appliance_last_contact_timestamp_seconds",
		"When the appliance last pushed or pulled; absent before its first contact.", []string{"appliance"}, nil)
	hubBacklogDesc = prometheus.NewDesc(namespace+"_hub_appliance_backlog_records",
		"Records the appliance reported still waiting to be sent, at its last contact.", []string{"appliance"}, nil)
	hubSkewDesc = prometheus.NewDesc(namespace+"_hub_appliance_clock_skew_seconds",
		"The appliance's clock minus the hub's at its last contact.", []string{"appliance"}, nil)
	hubBehindDesc = prometheus.NewDesc(namespace+"_hub_appliance_revocations_behind",
		"Revocations of the hub the appliance had not applied at its last contact.", []string{"appliance"}, nil)
)

func (c *syncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{syncEnrolledDesc, syncLastPushDesc, syncLastPullDesc, syncListsAgeDesc,
		syncWaitingDesc, syncErrorDesc, hubApplianceDesc, hubContactDesc, hubBacklogDesc, hubSkewDesc, hubBehindDesc} {
		ch <- d
	}
}

func (c *syncCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	stamp := func(d *prometheus.Desc, t time.Time, labels ...string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixMilli())/1000, labels...)
		}
	}
	st, err := c.db.SyncStatus(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(syncEnrolledDesc, err)
	} else if !st.Enrolled {
		gauge(syncEnrolledDesc, 0)
	} else {
		gauge(syncEnrolledDesc, 1)
		stamp(syncLastPushDesc, st.LastPush)
		stamp(syncLastPullDesc, st.LastPull)
		stamp(syncErrorDesc, st.LastErrorAt)
		since := st.LastPull
		if since.IsZero() {
			since = st.EnrolledAt
		}
		gauge(syncListsAgeDesc, c.now().Sub(since).Seconds())
		gauge(syncWaitingDesc, float64(st.ScansWaiting), "scans")
		gauge(syncWaitingDesc, float64(st.EventsWaiting), "events")
	}
	list, err := c.db.ApplianceStatuses(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(hubApplianceDesc, err)
		return
	}
	for _, a := range list {
		gauge(hubApplianceDesc, 1, a.Name, a.State())
		stamp(hubContactDesc, a.LastContact, a.Name)
		gauge(hubBacklogDesc, float64(a.Backlog), a.Name)
		gauge(hubSkewDesc, a.ClockSkew.Seconds(), a.Name)
		gauge(hubBehindDesc, float64(a.RevocationsBehind), a.Name)
	}
}
