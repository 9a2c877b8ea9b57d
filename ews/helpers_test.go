package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testToken   = "tok-SECRET-eyJ0eXAiOiJKV1Qi"
	testMailbox = "support@contoso.com"
)

// recorded is one request the fake server received.
type recorded struct {
	header http.Header
	body   []byte
	root   *node
	op     string
	ctx    context.Context // the request's: done when the client goes away
}

// fakeEWS is an httptest server whose replies a test scripts by operation.
type fakeEWS struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	respond func(w http.ResponseWriter, r recorded)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, r recorded)) *fakeEWS {
	t.Helper()
	f := &fakeEWS{t: t, respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := recorded{header: req.Header.Clone(), body: body, ctx: req.Context()}
		if req.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", req.Method)
		}
		if root, err := parseTree(bytes.NewReader(body)); err != nil {
			t.Errorf("request is not XML: %v\n%s", err, body)
		} else {
			rec.root = root
			if b := strictPath(root, nsSOAP, "Body"); b != nil && b.first() != nil {
				rec.op = b.first().name.Local
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		f.respond(w, rec)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEWS) client(opts Options) *Client {
	opts.URL = f.srv.URL + "/EWS/Exchange.asmx"
	opts.AllowHTTP = true // the fake is plain http on loopback
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Token == nil {
		opts.Token = func(context.Context) (string, error) { return testToken, nil }
	}
	return NewClient(opts)
}

func (f *fakeEWS) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeEWS) last() recorded {
	r := f.requests()
	if len(r) == 0 {
		f.t.Fatal("no request received")
	}
	return r[len(r)-1]
}

// serveFile answers with a fixture; fault_* files come with HTTP 500 as
// Exchange sends SOAP faults.
func serveFile(t *testing.T, name string) func(http.ResponseWriter, recorded) {
	data := readFixture(t, name)
	return func(w http.ResponseWriter, _ recorded) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		if strings.HasPrefix(name, "fault_") {
			w.WriteHeader(http.StatusInternalServerError)
		}
		w.Write(data)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "ews", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// strictChild is child without the leniency for unqualified elements: what
// we send must carry the right namespaces.
func strictChild(n *node, ns, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.name.Space == ns && c.name.Local == local {
			return c
		}
	}
	return nil
}

func strictPath(n *node, ns string, locals ...string) *node {
	for _, l := range locals {
		n = strictChild(n, ns, l)
	}
	return n
}

// checkEnvelope asserts the HTTP headers and SOAP header of every request
// and returns the operation element.
func checkEnvelope(t *testing.T, r recorded, op string) *node {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":    "text/xml; charset=utf-8",
		"Authorization":   "Bearer " + testToken,
		"X-Anchormailbox": testMailbox,
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r.root == nil || r.root.name.Space != nsSOAP || r.root.name.Local != "Envelope" {
		t.Fatalf("request root is not a SOAP 1.1 Envelope:\n%s", r.body)
	}
	h := strictChild(r.root, nsSOAP, "Header")
	if v := strictChild(h, nsTypes, "RequestServerVersion").attr("Version"); v != "Exchange2013_SP1" {
		t.Errorf("RequestServerVersion Version = %q, want Exchange2013_SP1", v)
	}
	if got := strictPath(h, nsTypes, "ExchangeImpersonation", "ConnectingSID", "PrimarySmtpAddress").value(); got != testMailbox {
		t.Errorf("ExchangeImpersonation/ConnectingSID/PrimarySmtpAddress = %q, want %q", got, testMailbox)
	}
	o := strictPath(r.root, nsSOAP, "Body").first()
	if o == nil || o.name.Space != nsMessages || o.name.Local != op {
		t.Fatalf("body element = %v, want m:%s", o, op)
	}
	return o
}

// envelopeOf wraps a body in a response envelope with the usual prefixes.
func envelopeOf(body string) string {
	return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="` + nsSOAP + `"><s:Body>` +
		strings.ReplaceAll(body, "XMLNS", `xmlns:m="`+nsMessages+`" xmlns:t="`+nsTypes+`"`) + `</s:Body></s:Envelope>`
}

// responseOf builds an operation response from response-message bodies.
func responseOf(op string, msgs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<m:%sResponse XMLNS><m:ResponseMessages>`, op)
	for _, m := range msgs {
		b.WriteString(m)
	}
	fmt.Fprintf(&b, `</m:ResponseMessages></m:%sResponse>`, op)
	return envelopeOf(b.String())
}

func okMessage(op, inner string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>%s</m:%sResponseMessage>`, op, inner, op)
}

func errMessage(op, code string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s happened</m:MessageText><m:ResponseCode>%s</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>`, op, code, code, op)
}

func writeXML(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, s)
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// fastBackoff lowers the 1 s floor of server back-offs for one test, so that
// retries after ErrorServerBusy take milliseconds.
func fastBackoff(t *testing.T) {
	old := minBackoff
	minBackoff = time.Millisecond
	t.Cleanup(func() { minBackoff = old })
}
