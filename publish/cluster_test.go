package publish

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/natstest"
)

// TestReplicasInTwoNodeCluster: a cluster of two cannot keep three copies;
// Connect creates the stream and buckets with two, and says so.
func TestReplicasInTwoNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster (-short)")
	}
	_, urls := natstest.Cluster(t, 2)
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{URL: urls[0]}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Leases(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"MAIL", "KV_" + StateBucket, "KV_" + LeaseBucket, "OBJ_" + BlobBucket} {
		st, err := c.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 2 {
			t.Errorf("stream %s has %d replicas, want 2", name, r)
		}
	}
	if n := strings.Count(logs.String(), "cannot keep three copies"); n != 1 {
		t.Errorf("warned %d times about fewer copies, want once:\n%s", n, logs.String())
	}
}
