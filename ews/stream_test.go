package ews

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// TestWaitStreamNeverAccepted: a server that takes GetStreamingEvents and
// never answers does not hold Wait: after streamUpTimeout the source waits
// the poll interval instead, and tries the same subscription next time.
func TestWaitStreamNeverAccepted(t *testing.T) {
	defer func(d time.Duration) { streamUpTimeout = d }(streamUpTimeout)
	streamUpTimeout = 100 * time.Millisecond
	ended := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		switch r.op {
		case "GetFolder":
			serveFile(t, "getfolder.xml")(w, r)
		case "Subscribe":
			writeXML(w, 200, responseOf("Subscribe", okMessage("Subscribe", "<m:SubscriptionId>sub-1</m:SubscriptionId>")))
		case "GetStreamingEvents":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select { // accepted, then silence
			case <-r.ctx.Done():
			case <-ended:
			}
		default:
			t.Errorf("unexpected operation %q", r.op)
			w.WriteHeader(500)
		}
	})
	t.Cleanup(func() { close(ended) }) // before the server closes: it waits for handlers
	s := openSource(t, f, source.Mailbox{})
	for round := 1; round <= 2; round++ {
		done := make(chan error, 1)
		go func() { done <- s.Wait(context.Background(), 200*time.Millisecond) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Wait still waiting 10s after the server took the streaming request", round)
		}
	}
	ops := map[string]int{}
	for _, r := range f.requests() {
		ops[r.op]++
	}
	if ops["Subscribe"] != 1 || ops["GetStreamingEvents"] != 2 || s.stream != nil {
		t.Errorf("requests %v, stream %v; want one Subscribe, a streaming request per round, no stream", ops, s.stream)
	}
}
