package publish

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storedBytesDesc is mailpoller_stored_bytes; label store: events (the
// events stream) or blobs (the blob object store's stream).
var storedBytesDesc = prometheus.NewDesc("mailpoller_stored_bytes",
	"Bytes JetStream holds for mailpoller, by store: events (the events stream) or blobs (the blob bucket). Compare with nats.retention.*_max_bytes.",
	[]string{"store"}, nil)

// storedLimitDesc is mailpoller_stored_bytes_limit, the store's max bytes
// (nats.retention), absent when it has none.
var storedLimitDesc = prometheus.NewDesc("mailpoller_stored_bytes_limit",
	"Most bytes a store may hold (nats.retention.events_max_bytes, blobs_max_bytes); absent when unlimited.",
	[]string{"store"}, nil)

// storageScrapeTimeout bounds the JetStream look-ups of one scrape.
const storageScrapeTimeout = 2 * time.Second

// storageCollector reads the stores' sizes from JetStream at each scrape.
type storageCollector struct{ c *Conn }

// StorageCollector is a prometheus.Collector of mailpoller_stored_bytes
// and mailpoller_stored_bytes_limit for store="events" and store="blobs".
// Each scrape asks JetStream for the two streams' info (within 2s in all);
// a store that does not answer is left out of that scrape. It is safe for
// concurrent use.
func (c *Conn) StorageCollector() prometheus.Collector { return storageCollector{c} }

func (s storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storedBytesDesc
	ch <- storedLimitDesc
}

func (s storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storageScrapeTimeout)
	defer cancel()
	for _, st := range []struct{ store, stream string }{{"events", s.c.stream}, {"blobs", "OBJ_" + BlobBucket}} {
		str, err := s.c.js.Stream(ctx, st.stream)
		if err != nil {
			s.c.log.Debug("stored bytes not read", "store", st.store, "stream", st.stream, "err", err)
			continue
		}
		info := str.CachedInfo()
		ch <- prometheus.MustNewConstMetric(storedBytesDesc, prometheus.GaugeValue, float64(info.State.Bytes), st.store)
		if info.Config.MaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(storedLimitDesc, prometheus.GaugeValue, float64(info.Config.MaxBytes), st.store)
		}
	}
}

// outlivesNewEvent reports whether a blob stored at stored is kept (by
// nats.retention.blobs_max_age) at least as long as an event published now
// (events_max_age). A blob that would expire first is written again, so an
// event never points at a blob JetStream already dropped by age.
func (c *Conn) outlivesNewEvent(stored time.Time) bool {
	blobs, events := c.keep.BlobsMaxAge.D(), c.keep.EventsMaxAge.D()
	if blobs <= 0 {
		return true // blobs kept for ever
	}
	if events <= 0 {
		return false // events kept for ever: no blob outlives them (config refuses this)
	}
	return !stored.Add(blobs).Before(time.Now().Add(events))
}
