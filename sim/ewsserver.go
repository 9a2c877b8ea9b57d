package sim

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const ewsPath = "/EWS/Exchange.asmx"

// EWSServer plays Exchange's EWS endpoint: the SOAP subset a polling
// client uses (GetFolder, FindFolder, CreateFolder, SyncFolderItems,
// GetItem, FindItem, UpdateItem, MoveItem, DeleteItem, Subscribe and
// GetStreamingEvents) over the shared Store, with app-only Bearer tokens
// of Exchange's audience and ExchangeImpersonation as Exchange Online
// requires, or Basic and NTLM logins of seeded users as Exchange Server
// has them (see ewsauth.go). Requests are read by local element names, so any namespace
// prefixes work; the path is matched case-insensitively. It is an
// http.Handler, mounted on the simulator's HTTPS listener, and injects the
// EWS faults Exchange produces. Its methods are safe for concurrent use.
type EWSServer struct {
	store  *Store
	dir    *directory
	tokens *TokenServer

	mu     sync.Mutex
	faults ewsFaults
	subs   map[string]subscription // streaming subscriptions by id
	reqs   map[string]int          // requests by operation name

	// The virtual directory's authentication methods besides OAuth (see
	// BasicAuth, WindowsAuth), and the NTLM logins of connections.
	noBasic, noWindows bool
	ntlm               ntlmConns
}

// BasicAuth switches Basic authentication of the EWS virtual directory on
// (the default) or off, as Set-WebServicesVirtualDirectory
// -BasicAuthentication does: when off, a 401 carries no Basic challenge
// and Basic credentials are refused.
func (s *EWSServer) BasicAuth(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noBasic = !on
}

// WindowsAuth switches NTLM (Windows authentication, offered as Negotiate
// and NTLM) on (the default) or off, as Set-WebServicesVirtualDirectory
// -WindowsAuthentication does.
func (s *EWSServer) WindowsAuth(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noWindows = !on
}

// ewsFaults are the faults injected per mailbox (lower-case address) or
// per app (lower-case client id).
type ewsFaults struct {
	busy    map[string]int // requests left to answer ErrorServerBusy
	busyMs  map[string]int // the BackOffMilliseconds they carry
	status  map[string]int // requests left to answer HTTP 503
	blocked map[string]bool
}

func newEWSServer(store *Store, dir *directory, tokens *TokenServer) *EWSServer {
	return &EWSServer{
		store: store, dir: dir, tokens: tokens, subs: map[string]subscription{}, reqs: map[string]int{},
		faults: ewsFaults{busy: map[string]int{}, busyMs: map[string]int{}, status: map[string]int{}, blocked: map[string]bool{}},
	}
}

// Requests returns a copy of the count of requests by EWS operation name
// (the SOAP body's operation element, e.g. SyncFolderItems, GetItem,
// UpdateItem), counting those that passed authentication and
// impersonation checks and reached an operation, faults injected by Busy
// and Unavailable included. It is safe for concurrent use.
func (s *EWSServer) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.reqs)
}

// Unavailable makes the next n requests for mailbox answer HTTP 503, as
// IIS does when its request queue is full.
func (s *EWSServer) Unavailable(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.status[strings.ToLower(mailbox)] += n
}

// Block makes Exchange refuse EWS to an app, as Exchange Online does for
// apps not listed in EwsAllowedAppIDs once a tenant's EWS is off.
func (s *EWSServer) Block(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.blocked[strings.ToLower(clientID)] = true
}

// Busy makes the next n requests for mailbox fail with an ErrorServerBusy
// SOAP fault carrying BackOffMilliseconds.
func (s *EWSServer) Busy(mailbox string, n int, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	s.faults.busy[m] += n
	s.faults.busyMs[m] = int(backoff / time.Millisecond)
}

func (s *EWSServer) blocked(clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.blocked[strings.ToLower(clientID)]
}

// takeFault takes what was injected for the next request on mailbox: an
// HTTP 503, or an ErrorServerBusy with its back-off.
func (s *EWSServer) takeFault(mailbox string) (unavailable, busy bool, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unavailable = s.faults.status[mailbox] > 0; unavailable {
		s.faults.status[mailbox]--
	}
	if busy = s.faults.busy[mailbox] > 0; busy {
		s.faults.busy[mailbox]--
	}
	return unavailable, busy, time.Duration(s.faults.busyMs[mailbox]) * time.Millisecond
}

// Exchange's x-ms-diagnostics for refused tokens.
const (
	diagNoRoles = `2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant"`
	// diagAudience is sent for a token of another resource (%s: its aud).
	diagAudience = `2000003;reason="The audience claim value is invalid '%s'.";error_category="invalid_resource"`
)

// ServeHTTP serves POST requests to the EWS path.
func (s *EWSServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.URL.Path, ewsPath) {
		http.NotFound(w, r)
		return
	}
	user, handled := s.userLogin(w, r)
	if handled {
		return
	}
	var c *Claims
	if user == nil {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var err error
		c, err = s.tokens.Verify(tok, s.dir.ewsAudience())
		switch {
		case ok && errors.Is(err, errAudience):
			s.challenge(w, r, fmt.Sprintf(diagAudience, c.Audience), "", "")
			return
		case !ok || err != nil || !slices.Contains(c.Roles, "full_access_as_app"):
			s.challenge(w, r, diagNoRoles, "", "")
			return
		}
		if s.blocked(c.AppID) {
			writeFault(w, "ErrorAccessDenied", "Access is denied. EWS is disabled for this application by the organization's EwsEnabled and EwsAllowedAppIDs settings.", 0)
			return
		}
	}
	doc, err := parseXML(io.LimitReader(r.Body, 32<<20))
	env := doc.child("Envelope")
	if err != nil || env == nil || env.child("Body") == nil || len(env.child("Body").kids) == 0 {
		writeFault(w, "ErrorSchemaValidation", "The request failed schema validation.", 0)
		return
	}
	sid := env.find("Header", "ExchangeImpersonation", "ConnectingSID")
	var mailbox string
	for _, k := range []string{"PrimarySmtpAddress", "SmtpAddress", "PrincipalName"} {
		if n := sid.child(k); n != nil {
			mailbox = strings.ToLower(strings.TrimSpace(n.text))
		}
	}
	delegate := user != nil && mailbox == ""
	if delegate {
		mailbox = s.delegateMailbox(user, env.child("Body").kids[0])
	}
	switch {
	case mailbox == "":
		writeFault(w, "ErrorInvalidExchangeImpersonationHeaderData", "ExchangeImpersonation SOAP header must be present for this type of OAuth token.", 0)
		return
	case !s.store.HasMailbox(mailbox):
		writeFault(w, "ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.", 0)
		return
	case delegate && !user.Opens(mailbox):
		writeFault(w, "ErrorAccessDenied", "Access is denied. Check credentials and try again.", 0)
		return
	case user != nil && !delegate && !user.Impersonation:
		writeFault(w, "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.", 0)
		return
	case user == nil && !s.dir.allowed(c, "full_access_as_app", mailbox, s.store):
		writeFault(w, "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.", 0)
		return
	}
	s.mu.Lock()
	s.reqs[env.child("Body").kids[0].name]++
	s.mu.Unlock()
	unavailable, busy, backoff := s.takeFault(mailbox)
	if unavailable {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if busy {
		writeFault(w, "ErrorServerBusy", "The server cannot service this request right now. Try again later.", backoff)
		return
	}
	op := env.child("Body").kids[0]
	if op.name == "GetStreamingEvents" {
		s.ewsStream(w, r, mailbox, op)
		return
	}
	var msgs []string
	switch op.name {
	case "Subscribe":
		msgs = s.ewsSubscribe(mailbox, op)
	case "GetFolder":
		msgs = s.ewsGetFolder(mailbox, op)
	case "FindFolder":
		msgs = s.ewsFindFolder(mailbox, op)
	case "CreateFolder":
		msgs = s.ewsCreateFolder(mailbox, op)
	case "SyncFolderItems":
		msgs = s.ewsSync(mailbox, op)
	case "GetItem":
		msgs = s.ewsGetItem(mailbox, op)
	case "FindItem":
		msgs = s.ewsFindItem(mailbox, op)
	case "UpdateItem":
		msgs = s.ewsUpdate(mailbox, op)
	case "MoveItem":
		msgs = s.ewsMove(mailbox, op, "moved")
	case "DeleteItem":
		msgs = s.ewsMove(mailbox, op, "deleted")
	default:
		writeFault(w, "ErrorInvalidRequest", "The request is not supported by the simulator: "+op.name, 0)
		return
	}
	writeSOAP(w, http.StatusOK, fmt.Sprintf(`<m:%sResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" `+
		`xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>%s</m:ResponseMessages></m:%sResponse>`,
		op.name, strings.Join(msgs, ""), op.name))
}

// ewsSubscribe opens a streaming subscription on one folder.
func (s *EWSServer) ewsSubscribe(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	f := s.ewsFolder(mailbox, op.find("StreamingSubscriptionRequest", "FolderIds"))
	s.store.mu.Unlock()
	if f == nil {
		return []string{errMsg("Subscribe", "ErrorFolderNotFound", "The specified folder could not be found in the store.")}
	}
	id := newID()
	// Events are queued on the subscription from now on, as in Exchange,
	// even before the client opens GetStreamingEvents.
	ch, unwatch, err := s.store.watch(mailbox, f.name)
	if err != nil {
		return []string{errMsg("Subscribe", "ErrorFolderNotFound", err.Error())}
	}
	s.mu.Lock()
	s.subs[id] = subscription{mailbox: mailbox, folder: f.name, events: ch, unwatch: unwatch, gone: make(chan struct{})}
	s.mu.Unlock()
	return []string{okMsg("Subscribe", "<m:SubscriptionId>"+id+"</m:SubscriptionId>")}
}

type subscription struct {
	mailbox, folder string
	events          chan struct{} // signalled on every delivery since Subscribe
	unwatch         func()
	gone            chan struct{} // closed when the subscription expires
}

// ExpireSubscriptions ends every EWS streaming subscription, as Exchange
// does when one times out or the mailbox moves to another server: open
// GetStreamingEvents connections break off and the IDs are unknown from
// then on. It returns how many there were.
func (s *EWSServer) ExpireSubscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.subs)
	for id, sub := range s.subs {
		sub.unwatch()
		close(sub.gone)
		delete(s.subs, id)
	}
	return n
}

// ewsStream serves GetStreamingEvents: a chunked response of SOAP
// envelopes, one per delivery, ended by ConnectionStatus Closed when the
// ConnectionTimeout (minutes) runs out.
func (s *EWSServer) ewsStream(w http.ResponseWriter, r *http.Request, mailbox string, op *xnode) {
	id := strings.TrimSpace(op.find("SubscriptionIds", "SubscriptionId").text)
	s.mu.Lock()
	sub, ok := s.subs[id]
	s.mu.Unlock()
	envelope := func(inner string) string { // no XML declaration: the envelopes follow one another
		return strings.TrimPrefix(soapHead, `<?xml version="1.0" encoding="utf-8"?>`) + `<m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" ` +
			`xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>` + inner +
			`</m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>`
	}
	if !ok || sub.mailbox != mailbox {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, envelope(errMsg("GetStreamingEvents", "ErrorSubscriptionNotFound", "The subscription was not found.")))
		return
	}
	minutes, _ := strconv.Atoi(strings.TrimSpace(op.child("ConnectionTimeout").text))
	ch := sub.events
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fl, _ := w.(http.Flusher)
	send := func(inner string) {
		io.WriteString(w, envelope(okMsg("GetStreamingEvents", inner)))
		if fl != nil {
			fl.Flush()
		}
	}
	send(`<m:ConnectionStatus>OK</m:ConnectionStatus>`)
	timeout := time.NewTimer(time.Duration(max(1, minutes)) * time.Minute)
	defer timeout.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			return
		case <-timeout.C:
			send(`<m:ConnectionStatus>Closed</m:ConnectionStatus>`)
			return
		case <-ch:
			send(fmt.Sprintf(`<m:Notifications><m:Notification><t:SubscriptionId>%s</t:SubscriptionId><t:NewMailEvent><t:TimeStamp>%s</t:TimeStamp>`+
				`</t:NewMailEvent></m:Notification></m:Notifications>`, id, time.Now().UTC().Format(time.RFC3339)))
		}
	}
}
