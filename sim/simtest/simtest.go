// Package simtest starts the Microsoft 365 simulator for a Go test.
package simtest

import (
	"context"
	"testing"

	"github.com/mailpoller/mailpoller/sim"
)

// Start starts the simulator from seed on loopback ports, with its CA
// written to a temporary directory (Endpoints().CAFile), and closes it
// when tb ends. A failed start fails tb.
func Start(tb testing.TB, seed *sim.Seed) *sim.Sim {
	tb.Helper()
	s, err := sim.Start(context.Background(), seed, &sim.Options{CADir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("sim.Start() = %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}
