package bench

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
)

type slogLogger = slog.Logger

func newDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// imapToken gets an app-only token from the simulator's token endpoint.
func imapToken(b testing.TB, f *fixture) (string, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.sim.CAPool()}}}
	resp, err := hc.PostForm(f.sim.Endpoints().Authority+"/"+tenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {"https://outlook.office365.com/.default"}})
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken, nil
}

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }

// cpuSeconds is this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// machineBusy is the CPU seconds all processes of the machine have used
// (from /proc/stat), to tell whether a run was CPU-bound.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var name string
	var user, nice, sys, idle, iowait, irq, softirq float64
	fmt.Sscan(string(data), &name, &user, &nice, &sys, &idle, &iowait, &irq, &softirq)
	return (user + nice + sys + irq + softirq) / 100 // USER_HZ
}
