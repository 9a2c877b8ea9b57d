package relay_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/relay"
)

// echo serves one line-echo connection at a time.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					c.Write(append(s.Bytes(), '\n'))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestHoldAndRelease(t *testing.T) {
	r, err := relay.Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	c.Write([]byte("one\n"))
	if l, err := rd.ReadString('\n'); err != nil || l != "one\n" {
		t.Fatalf("relayed %q, %v; want one", l, err)
	}
	r.Hold()
	c.Write([]byte("two\n"))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if l, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("held relay passed %q", l)
	}
	c.SetReadDeadline(time.Time{})
	r.Release()
	if l, err := rd.ReadString('\n'); err != nil || l != "two\n" {
		t.Fatalf("after release got %q, %v; want two", l, err)
	}
}

// A delayed relay adds its round trip to every exchange: a request and
// its echo take at least twice the one-way delay.
func TestDelay(t *testing.T) {
	const oneWay = 20 * time.Millisecond
	r, err := relay.StartDelayed(echo(t), oneWay)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for i := range 3 {
		start := time.Now()
		c.Write([]byte("ping\n"))
		if l, err := rd.ReadString('\n'); err != nil || l != "ping\n" {
			t.Fatalf("round %d: %q, %v", i, l, err)
		}
		if rtt := time.Since(start); rtt < 2*oneWay {
			t.Errorf("round %d took %v, want at least %v", i, rtt, 2*oneWay)
		}
	}
}
