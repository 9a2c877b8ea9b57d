package sim

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// graphPrefix is where the Graph endpoint is mounted.
const graphPrefix = "/v1.0"

// graphConcurrency is Outlook's limit of concurrent requests per app and
// mailbox; the next one in flight is answered 429.
const graphConcurrency = 4

// GraphServer plays Microsoft Graph v1.0's mail API over the shared Store:
// mailFolders, childFolders, messages/delta, messages/{id} (GET, PATCH
// isRead, DELETE), $value, move and $batch, with app-only Bearer tokens of
// Graph's audience, Graph's roles (Mail.Read, Mail.ReadWrite) and the app's
// mailbox scope. It answers Graph's JSON errors, throttles at 4 concurrent
// requests per app and mailbox and injects Graph's faults. It is an
// http.Handler mounted under /v1.0/; its methods are safe for concurrent use.
type GraphServer struct {
	store  *Store
	dir    *directory
	tokens *TokenServer

	mu          sync.Mutex
	throttle    map[string][]time.Duration // per mailbox: Retry-After of the next 429s (0: no header)
	unavailable map[string][]time.Duration // per mailbox: Retry-After of the next 503s (0: no header)
	unauth      int                        // next requests answered 401
	unauthItems int                        // next $batch items answered 401
	deltaGen    map[string]int             // per mailbox: delta tokens of older generations are refused
	inFlight    map[string]int             // per app + " " + mailbox
	maxInFlight map[string]int             // per mailbox: most requests ever in flight at once (429s included)
	requests    map[string]int             // per mailbox: HTTP requests ($batch: 1)
	kinds       map[string]map[string]int  // per mailbox: requests by kind, batch items included
	throttled   map[string][]ThrottleEvent // per mailbox

	subs     map[string]*graphSub // change-notification subscriptions by id
	notifyCA *x509.CertPool       // trusted for https notification URLs (nil: the system's)

	admitted func() // test hook: called once a request is admitted, before its handler
}

// ThrottleEvent is one 429 or 503 the server sent for a mailbox, and when
// the next request for that mailbox (from another HTTP request) arrived.
type ThrottleEvent struct {
	Status      int
	Sent        time.Time
	RetryAfter  time.Duration // as sent, rounded up to seconds; 0: no Retry-After
	NextArrival time.Time     // zero until the next request arrives

	req *http.Request
}

func newGraphServer(store *Store, dir *directory, tokens *TokenServer) *GraphServer {
	return &GraphServer{
		store: store, dir: dir, tokens: tokens,
		throttle: map[string][]time.Duration{}, unavailable: map[string][]time.Duration{},
		deltaGen: map[string]int{}, inFlight: map[string]int{}, maxInFlight: map[string]int{},
		requests: map[string]int{}, subs: map[string]*graphSub{}, kinds: map[string]map[string]int{}, throttled: map[string][]ThrottleEvent{},
	}
}

// Throttle makes the next n requests for mailbox (batch items included)
// answer 429 ApplicationThrottled with Retry-After of retryAfter rounded up
// to whole seconds; retryAfter 0 sends no Retry-After, as Graph sometimes does.
func (g *GraphServer) Throttle(mailbox string, n int, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := strings.ToLower(mailbox)
	for range n {
		g.throttle[m] = append(g.throttle[m], retryAfter)
	}
}

// Unavailable makes the next n requests for mailbox answer 503
// serviceNotAvailable, with Retry-After when retryAfter > 0.
func (g *GraphServer) Unavailable(mailbox string, n int, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := strings.ToLower(mailbox)
	for range n {
		g.unavailable[m] = append(g.unavailable[m], retryAfter)
	}
}

// ExpireDelta makes every delta token (deltaLink and nextLink) issued so
// far for mailbox answer 410 syncStateNotFound, as when Graph evicts a
// sync state.
func (g *GraphServer) ExpireDelta(mailbox string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deltaGen[strings.ToLower(mailbox)]++
}

// Unauthorized makes the next n HTTP requests answer 401
// InvalidAuthenticationToken, as for a token Graph no longer accepts.
func (g *GraphServer) Unauthorized(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unauth += n
}

// UnauthorizedItems makes the next n $batch items answer 401 inside a 200
// batch, which Graph itself does not do (it checks a batch's token once):
// a client must still not give up on the mailbox for it.
func (g *GraphServer) UnauthorizedItems(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unauthItems += n
}

// Requests counts the HTTP requests for mailbox; a $batch counts once per
// mailbox its items address.
func (g *GraphServer) Requests(mailbox string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[strings.ToLower(mailbox)]
}

// Count is how many requests of one kind mailbox got, batch items
// included: "folder", "folders", "childFolders", "delta", "message",
// "value", "patch", "move", "delete", and "batch" (batches with items for
// it) and "batchItem".
func (g *GraphServer) Count(mailbox, kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kinds[strings.ToLower(mailbox)][kind]
}

// MaxInFlight is the most requests for mailbox (of one app) that were in
// flight at once, those answered 429 for it included.
func (g *GraphServer) MaxInFlight(mailbox string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxInFlight[strings.ToLower(mailbox)]
}

// Throttled lists the 429 and 503 responses sent for mailbox, oldest first.
func (g *GraphServer) Throttled(mailbox string) []ThrottleEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.throttled[strings.ToLower(mailbox)])
	for i := range out {
		out[i].req = nil
	}
	return out
}

// graphError is Graph's error body.
type graphError struct {
	status     int
	code, text string
	retryAfter time.Duration // for 429 and 503; 0: none
}

func (e *graphError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.text) }

func gerr(status int, code, text string) *graphError {
	return &graphError{status: status, code: code, text: text}
}

var (
	errAccessDenied = gerr(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
	errItemNotFound = gerr(404, "ErrorItemNotFound", "The specified object was not found in the store.")
	errIDMalformed  = gerr(400, "ErrorInvalidIdMalformed", "Id is malformed.")
	// errSyncState is the answer to an evicted or expired delta token:
	// 410 Gone with code syncStateNotFound (the README's facts: 410 means a
	// full resync; the code is compared case-insensitively by clients).
	errSyncState = gerr(410, "syncStateNotFound", "The sync state generation is not found. Please initiate a full sync.")
)

// graphResponse is one answer, written to the wire or into a $batch.
type graphResponse struct {
	status int
	header http.Header
	body   []byte // JSON unless header says otherwise
}

func errorResponse(e *graphError, clientReqID string) *graphResponse {
	reqID := uuid()
	if clientReqID == "" {
		clientReqID = reqID
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": e.code, "message": e.text,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": reqID, "client-request-id": clientReqID},
	}})
	h := http.Header{"Content-Type": {"application/json"}, "Request-Id": {reqID}, "Client-Request-Id": {clientReqID}}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retrySeconds(e.retryAfter)))
	}
	if e.status == 401 {
		h.Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	return &graphResponse{status: e.status, header: h, body: body}
}

func retrySeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func jsonResponse(status int, v any) *graphResponse {
	body, _ := json.Marshal(v)
	return &graphResponse{status: status, header: http.Header{"Content-Type": {"application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"}}, body: body}
}

// graphReq is one request to serve, from the wire or a $batch item.
type graphReq struct {
	method   string
	segs     []string // path segments after /v1.0, unescaped
	query    url.Values
	header   http.Header
	body     []byte
	base     string        // https://host/v1.0
	outer    *http.Request // the HTTP request it came in
	immut    bool          // Prefer: IdType="ImmutableId"
	pageSize int           // Prefer: odata.maxpagesize, 0 if absent
}

// parsePrefer reads every Prefer header.
func (q *graphReq) parsePrefer() {
	for _, h := range q.header.Values("Prefer") {
		for _, p := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "idtype":
				q.immut = strings.EqualFold(v, "ImmutableId")
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					q.pageSize = min(n, 1000)
				}
			}
		}
	}
}

// authorize checks the Bearer token: its claims, or the 401 to answer.
// An injected 401 (Unauthorized) is taken by a request from the wire
// (wire), never by a $batch item: Graph checks the token of a batch once,
// for the whole batch.
func (g *GraphServer) authorize(h http.Header, wire bool) (*Claims, *graphError) {
	g.mu.Lock()
	forced := wire && g.unauth > 0 || !wire && g.unauthItems > 0
	switch {
	case forced && wire:
		g.unauth--
	case forced:
		g.unauthItems--
	}
	g.mu.Unlock()
	if forced {
		return nil, gerr(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
	}
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, gerr(401, "InvalidAuthenticationToken", "Access token is empty.")
	}
	c, err := g.tokens.Verify(tok, graphResource)
	switch {
	case errors.Is(err, errAudience):
		return nil, gerr(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	case err != nil && strings.Contains(err.Error(), "expired"):
		return nil, gerr(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
	case err != nil:
		return nil, gerr(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
	}
	return c, nil
}

// checkMailbox resolves the addressed user and checks the app may use it
// with the method: Mail.Read reads, Mail.ReadWrite reads and writes.
func (g *GraphServer) checkMailbox(c *Claims, user, method string) (string, *graphError) {
	write := method != http.MethodGet
	if !slices.Contains(c.Roles, "Mail.ReadWrite") && (write || !slices.Contains(c.Roles, "Mail.Read")) {
		return "", errAccessDenied
	}
	mailbox := strings.ToLower(user)
	if !g.store.HasMailbox(mailbox) {
		return "", gerr(404, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", user))
	}
	role := "Mail.ReadWrite"
	if !slices.Contains(c.Roles, role) {
		role = "Mail.Read"
	}
	if !g.dir.allowed(c, role, mailbox, g.store) {
		return "", errAccessDenied
	}
	return mailbox, nil
}

// admit counts a request for mailbox, applies the injected faults and the
// concurrency limit; done must be called when it is answered.
func (g *GraphServer) admit(c *Claims, mailbox, kind string, q *graphReq, batchItem bool) (done func(), e *graphError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for i := range g.throttled[mailbox] {
		if ev := &g.throttled[mailbox][i]; ev.NextArrival.IsZero() && ev.req != q.outer {
			ev.NextArrival = now
		}
	}
	if g.kinds[mailbox] == nil {
		g.kinds[mailbox] = map[string]int{}
	}
	g.kinds[mailbox][kind]++
	if batchItem {
		g.kinds[mailbox]["batchItem"]++
	} else {
		g.requests[mailbox]++
	}
	key := c.AppID + " " + mailbox
	g.inFlight[key]++
	g.maxInFlight[mailbox] = max(g.maxInFlight[mailbox], g.inFlight[key])
	done = func() {
		g.mu.Lock()
		g.inFlight[key]--
		g.mu.Unlock()
	}
	fail := func(err *graphError) (func(), *graphError) {
		g.throttled[mailbox] = append(g.throttled[mailbox], ThrottleEvent{Status: err.status, Sent: now,
			RetryAfter: time.Duration(retrySeconds(err.retryAfter)) * time.Second, req: q.outer})
		return done, err
	}
	if l := g.unavailable[mailbox]; len(l) > 0 {
		g.unavailable[mailbox] = l[1:]
		return fail(&graphError{status: 503, code: "serviceNotAvailable", text: "The service is temporarily unavailable. Please retry later.", retryAfter: l[0]})
	}
	if l := g.throttle[mailbox]; len(l) > 0 {
		g.throttle[mailbox] = l[1:]
		return fail(&graphError{status: 429, code: "ApplicationThrottled", text: "Application is over its IncomingBytes limit.", retryAfter: l[0]})
	}
	if g.inFlight[key] > graphConcurrency {
		return fail(&graphError{status: 429, code: "ApplicationThrottled", text: "Application is over its MailboxConcurrency limit.", retryAfter: time.Second})
	}
	return done, nil
}

// splitPath splits an escaped path into unescaped segments, turning
// OData key syntax mailFolders('x') into mailFolders, x.
func splitPath(escaped string) []string {
	var segs []string
	for _, s := range strings.Split(strings.Trim(escaped, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			u = s
		}
		if i := strings.Index(u, "('"); i > 0 && strings.HasSuffix(u, "')") {
			segs = append(segs, u[:i], u[i+2:len(u)-2])
			continue
		}
		segs = append(segs, u)
	}
	return segs
}

// ServeHTTP serves the requests under /v1.0/.
func (g *GraphServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	q := &graphReq{
		method: r.Method, segs: splitPath(strings.TrimPrefix(r.URL.EscapedPath(), graphPrefix)), query: r.URL.Query(),
		header: r.Header, body: body, base: "https://" + r.Host + graphPrefix, outer: r,
	}
	var resp *graphResponse
	switch {
	case err != nil:
		resp = errorResponse(gerr(400, "BadRequest", "Unable to read the request body."), r.Header.Get("client-request-id"))
	case len(q.segs) == 1 && q.segs[0] == "$batch" && r.Method == http.MethodPost:
		resp = g.batch(q)
	case len(q.segs) >= 1 && len(q.segs) <= 2 && q.segs[0] == "subscriptions" && r.Method != http.MethodGet:
		resp = g.subscriptions(q)
	default:
		resp = g.serve(q, false)
	}
	writeGraph(w, resp, r.Header.Get("client-request-id"))
}

func writeGraph(w http.ResponseWriter, resp *graphResponse, clientReqID string) {
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Request-Id") == "" {
		id := uuid()
		w.Header().Set("Request-Id", id)
		if clientReqID == "" {
			clientReqID = id
		}
		w.Header().Set("Client-Request-Id", clientReqID)
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

// serve answers one request (from the wire or a batch item).
func (g *GraphServer) serve(q *graphReq, batchItem bool) *graphResponse {
	crid := q.header.Get("client-request-id")
	c, e := g.authorize(q.header, !batchItem)
	if e != nil {
		return errorResponse(e, crid)
	}
	q.parsePrefer()
	if len(q.segs) < 2 || q.segs[0] != "users" {
		seg := ""
		if len(q.segs) > 0 {
			seg = q.segs[0]
		}
		return errorResponse(gerr(400, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg)), crid)
	}
	kind, handler := g.route(q)
	if handler == nil {
		return errorResponse(gerr(400, "BadRequest", "Resource not found for the segment '"+strings.Join(q.segs[2:], "/")+"'."), crid)
	}
	mailbox, e := g.checkMailbox(c, q.segs[1], q.method)
	if e != nil {
		return errorResponse(e, crid)
	}
	done, e := g.admit(c, mailbox, kind, q, batchItem)
	defer done()
	if e != nil {
		return errorResponse(e, crid)
	}
	if g.admitted != nil {
		g.admitted()
	}
	resp, e := handler(mailbox, q)
	if e != nil {
		return errorResponse(e, crid)
	}
	if resp.header == nil {
		resp.header = http.Header{}
	}
	var applied []string
	if q.pageSize > 0 && kind == "delta" {
		applied = append(applied, "odata.maxpagesize="+strconv.Itoa(q.pageSize))
	}
	if q.immut {
		applied = append(applied, `IdType="ImmutableId"`)
	}
	if len(applied) > 0 {
		resp.header.Set("Preference-Applied", strings.Join(applied, ", "))
	}
	return resp
}

type graphHandler func(mailbox string, q *graphReq) (*graphResponse, *graphError)

// route picks the handler for /users/{user}/… and names its kind.
func (g *GraphServer) route(q *graphReq) (string, graphHandler) {
	s, m := q.segs[2:], q.method
	is := func(method string, pattern ...string) bool {
		if m != method || len(s) != len(pattern) {
			return false
		}
		for i, p := range pattern {
			if p != "*" && !strings.EqualFold(p, s[i]) {
				return false
			}
		}
		return true
	}
	switch {
	case is("GET", "mailFolders"):
		return "folders", g.listFolders
	case is("GET", "mailFolders", "*"):
		return "folder", g.getFolder
	case is("GET", "mailFolders", "*", "childFolders"):
		return "childFolders", g.listFolders
	case is("POST", "mailFolders"), is("POST", "mailFolders", "*", "childFolders"):
		return "createFolder", g.createFolder
	case is("GET", "mailFolders", "*", "messages", "delta"):
		return "delta", g.delta
	case is("GET", "messages", "*"), is("GET", "mailFolders", "*", "messages", "*"):
		return "message", g.getMessage
	case is("GET", "messages", "*", "$value"), is("GET", "mailFolders", "*", "messages", "*", "$value"):
		return "value", g.getValue
	case is("PATCH", "messages", "*"):
		return "patch", g.patchMessage
	case is("POST", "messages", "*", "move"):
		return "move", g.moveMessage
	case is("DELETE", "messages", "*"):
		return "delete", g.deleteMessage
	case is("POST", "messages", "*", "permanentDelete"):
		return "delete", g.deleteMessage
	}
	return "", nil
}
