package config

import "testing"

// TestEmbeddedListenNone: "none" asks for an embedded server without a
// TCP port; it is not a host:port and must still be accepted.
func TestEmbeddedListenNone(t *testing.T) {
	c := mustParse(t, base("nats: {embedded: {listen: none}}"), nil)
	if c.NATS.Embedded.Listen != "none" {
		t.Fatalf("nats.embedded.listen = %q, want none", c.NATS.Embedded.Listen)
	}
	es := problems(t, base("nats: {embedded: {listen: nowhere}}"), nil)
	if len(es.List) != 1 || es.List[0].Key != "nats.embedded.listen" {
		t.Fatalf("listen: nowhere gave %v, want one nats.embedded.listen error", es)
	}
}
