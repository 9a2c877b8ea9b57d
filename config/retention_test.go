package config

import (
	"testing"
	"time"
)

// TestRetention: nats.retention's defaults, explicit values, and the
// rule that blobs outlive the events pointing at them.
func TestRetention(t *testing.T) {
	c := mustParse(t, base(), nil)
	r := c.NATS.Retention
	if r != (Retention{EventsMaxAge: Duration(720 * time.Hour), BlobsMaxAge: Duration(1440 * time.Hour)}) {
		t.Fatalf("default retention = %+v", r)
	}
	c = mustParse(t, base("nats: {retention: {events_max_age: 240h, events_max_bytes: 10GiB, blobs_max_bytes: 50GiB}}"), nil)
	r = c.NATS.Retention
	if r != (Retention{EventsMaxAge: Duration(240 * time.Hour), EventsMaxBytes: 10 << 30, BlobsMaxAge: Duration(480 * time.Hour), BlobsMaxBytes: 50 << 30}) {
		t.Fatalf("retention = %+v", r)
	}
	for _, tc := range []struct{ name, line, key string }{
		{"blobs shorter than events", "nats: {retention: {events_max_age: 240h, blobs_max_age: 100h}}", "nats.retention.blobs_max_age"},
		{"events for ever, blobs not", "nats: {retention: {events_max_age: 0s, blobs_max_age: 100h}}", "nats.retention.blobs_max_age"},
		{"negative age", "nats: {retention: {events_max_age: -1h, blobs_max_age: 0s}}", "nats.retention.events_max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := problems(t, base(tc.line), nil)
			if len(es.List) != 1 || es.List[0].Key != tc.key || es.List[0].Line != 7 {
				t.Fatalf("%s gave %v, want one %s error on line 7", tc.line, es, tc.key)
			}
		})
	}
	mustParse(t, base("nats: {retention: {events_max_age: 0s, blobs_max_age: 0s}}"), nil)
}
