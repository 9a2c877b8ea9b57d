// Package natstest runs NATS JetStream clusters on loopback for tests.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailpoller/mailpoller/internal/wait"
)

// Cluster starts n JetStream servers clustered on loopback, each storing
// in its own temporary directory, and waits until they have elected a
// meta leader that sees all n as current peers. It returns the servers
// (stopped at the end of the test) and their client URLs.
func Cluster(t testing.TB, n int) ([]*server.Server, []string) {
	t.Helper()
	client, cluster := freePorts(t, n), freePorts(t, n)
	var routes []*url.URL
	for _, p := range cluster {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var srvs []*server.Server
	var urls []string
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: client[i], JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "mailpoller", Host: "127.0.0.1", Port: cluster[i]}, Routes: routes, NoLog: true, NoSigs: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		srvs = append(srvs, s)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatal("cluster node did not start")
		}
	}
	wait.For(t, 30*time.Second, fmt.Sprintf("JetStream meta leader with %d current peers", n), func() bool { return ready(srvs) })
	return srvs, urls
}

// Server starts one JetStream server on 127.0.0.1:port storing in dir, as
// a user's own NATS would be, and returns it (stopped at the end of the
// test). The same port and dir start it again after a Shutdown.
func Server(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	return s
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return freePorts(t, 1)[0] }

func ready(srvs []*server.Server) bool {
	for _, s := range srvs {
		if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(srvs) {
			for _, o := range srvs {
				if !o.JetStreamIsCurrent() {
					return false
				}
			}
			return true
		}
	}
	return false
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		defer ln.Close()
	}
	return ports
}
