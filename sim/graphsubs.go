package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Change notifications: POST/PATCH/DELETE /v1.0/subscriptions for
// created messages of one folder, with Graph's validation handshake.

// graphSubMax is the longest a message subscription lives (minutes).
const graphSubMax = 10080

type graphSub struct {
	ID, Resource, ChangeType, NotificationURL, ClientState, LifecycleURL string
	Expiration                                                           time.Time
	tenant, mailbox                                                      string
	stop                                                                 func()
}

func (sub *graphSub) json(app string) map[string]any {
	return map[string]any{"id": sub.ID, "resource": sub.Resource, "changeType": sub.ChangeType, "clientState": sub.ClientState,
		"notificationUrl": sub.NotificationURL, "lifecycleNotificationUrl": sub.LifecycleURL, "applicationId": app,
		"expirationDateTime": sub.Expiration.Format(time.RFC3339), "latestSupportedTlsVersion": "v1_2"}
}

// SetNotificationCA makes the server trust pool for https notification
// URLs (http is allowed only for loopback hosts).
func (g *GraphServer) SetNotificationCA(pool *x509.CertPool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notifyCA = pool
}

func (g *GraphServer) notifyClient() *http.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.notifyCA}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }} // Graph follows no redirect
}

// notifyURLOK allows https, and http to loopback only.
func notifyURLOK(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback())
}

func (g *GraphServer) post(raw string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := g.notifyClient().Post(raw, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("notify %s: %w", raw, err)
	}
	resp.Body.Close()
	return nil
}

// validate runs the handshake: the endpoint must echo validationToken
// with 200 text/plain within 10 s.
func (g *GraphServer) validate(raw string) bool {
	tok := "Validation: Testing client application reachability for subscription Request-Id: " + uuid()
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, raw+sep+"validationToken="+url.QueryEscape(tok), nil)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := g.notifyClient().Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") && string(b) == tok
}

// subscriptions serves /v1.0/subscriptions[/{id}].
func (g *GraphServer) subscriptions(q *graphReq) *graphResponse {
	crid := q.header.Get("client-request-id")
	c, e := g.authorize(q.header, true)
	if e != nil {
		return errorResponse(e, crid)
	}
	var in struct {
		ChangeType, NotificationURL, Resource, ClientState, LifecycleNotificationURL string
		ExpirationDateTime                                                           time.Time
	}
	if len(q.body) > 0 && json.Unmarshal(q.body, &in) != nil {
		return errorResponse(gerr(400, "BadRequest", "Invalid JSON in the request body."), crid)
	}
	if len(q.segs) == 2 {
		g.mu.Lock()
		sub := g.subs[q.segs[1]]
		if sub == nil {
			g.mu.Unlock()
			return errorResponse(gerr(404, "ResourceNotFound", "The object was not found."), crid)
		}
		if q.method == http.MethodDelete {
			g.countLocked(sub.mailbox, "unsubscribe")
			delete(g.subs, sub.ID)
			g.mu.Unlock()
			sub.stop()
			return &graphResponse{status: 204, header: http.Header{}}
		}
		if q.method != http.MethodPatch || in.ExpirationDateTime.After(time.Now().Add(graphSubMax*time.Minute)) {
			g.mu.Unlock()
			return errorResponse(gerr(400, "ExtensionError", "Subscription expiration can only be 10080 minutes in the future."), crid)
		}
		g.countLocked(sub.mailbox, "renew")
		sub.Expiration = in.ExpirationDateTime.UTC()
		out := sub.json(c.AppID)
		g.mu.Unlock()
		return jsonResponse(200, out)
	}
	segs := splitPath(in.Resource)
	if len(segs) != 5 || segs[0] != "users" || !strings.EqualFold(segs[2], "mailFolders") || !strings.EqualFold(segs[4], "messages") || in.ChangeType != "created" {
		return errorResponse(gerr(400, "ExtensionError", "The simulator supports changeType created on users/{id}/mailFolders('{id}')/messages."), crid)
	}
	if in.ExpirationDateTime.After(time.Now().Add(graphSubMax*time.Minute)) || in.ExpirationDateTime.Before(time.Now()) {
		return errorResponse(gerr(400, "ExtensionError", "Subscription expiration can only be 10080 minutes in the future."), crid)
	}
	if !notifyURLOK(in.NotificationURL) {
		return errorResponse(gerr(400, "ExtensionError", "The notification URL must use https."), crid)
	}
	mailbox, e := g.checkMailbox(c, segs[1], http.MethodGet)
	if e != nil {
		return errorResponse(e, crid)
	}
	g.store.mu.Lock()
	gf, e := g.resolveFolder(mailbox, segs[3])
	g.store.mu.Unlock()
	if e != nil || gf.f == nil {
		return errorResponse(errItemNotFound, crid)
	}
	if !g.validate(in.NotificationURL) {
		return errorResponse(gerr(400, "InvalidRequest", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."), crid)
	}
	sub := &graphSub{ID: uuid(), Resource: in.Resource, ChangeType: "created", NotificationURL: in.NotificationURL, ClientState: in.ClientState,
		LifecycleURL: in.LifecycleNotificationURL, Expiration: in.ExpirationDateTime.UTC(), tenant: c.Tenant, mailbox: mailbox}
	if err := g.watchSub(sub, gf.f); err != nil {
		return errorResponse(errItemNotFound, crid)
	}
	g.mu.Lock()
	g.countLocked(mailbox, "subscribe")
	g.subs[sub.ID] = sub
	out := sub.json(c.AppID)
	g.mu.Unlock()
	return jsonResponse(201, out)
}

// watchSub posts a notification for every message delivered to f.
func (g *GraphServer) watchSub(sub *graphSub, f *folder) error {
	ch, unwatch, err := g.store.watch(sub.mailbox, f.name)
	if err != nil {
		return fmt.Errorf("subscription watch: %w", err)
	}
	done := make(chan struct{})
	sub.stop = func() { unwatch(); close(done) }
	g.store.mu.Lock()
	last := f.uidNext - 1
	g.store.mu.Unlock()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
			}
			g.store.mu.Lock()
			var ids []string
			for _, m := range f.msgs {
				if m.UID > last {
					ids, last = append(ids, m.ItemID), m.UID
				}
			}
			g.store.mu.Unlock()
			g.mu.Lock()
			exp := sub.Expiration
			g.mu.Unlock()
			for _, id := range ids {
				g.post(sub.NotificationURL, map[string]any{"value": []any{map[string]any{
					"subscriptionId": sub.ID, "subscriptionExpirationDateTime": exp.Format(time.RFC3339), "clientState": sub.ClientState,
					"changeType": "created", "resource": "Users/" + sub.mailbox + "/Messages/" + id, "tenantId": sub.tenant,
					"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Message", "@odata.id": "Users/" + sub.mailbox + "/Messages/" + id, "id": id},
				}}})
			}
		}
	}()
	return nil
}

// countLocked counts a subscription request of kind for mailbox (Count
// and Requests report it); g.mu is held.
func (g *GraphServer) countLocked(mailbox, kind string) {
	if g.kinds[mailbox] == nil {
		g.kinds[mailbox] = map[string]int{}
	}
	g.kinds[mailbox][kind]++
	g.requests[mailbox]++
}

// Subscription is a change-notification subscription the server holds.
type Subscription struct {
	ID, Resource, NotificationURL string
	Expiration                    time.Time
}

// Subscriptions lists mailbox's live subscriptions.
func (g *GraphServer) Subscriptions(mailbox string) []Subscription {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Subscription
	for _, sub := range g.subs {
		if strings.EqualFold(sub.mailbox, mailbox) {
			out = append(out, Subscription{ID: sub.ID, Resource: sub.Resource, NotificationURL: sub.NotificationURL, Expiration: sub.Expiration})
		}
	}
	return out
}

// Lifecycle sends a lifecycle notification (reauthorizationRequired,
// missed or subscriptionRemoved) for subscription id to its
// lifecycleNotificationUrl, or its notificationUrl when it has none;
// subscriptionRemoved also ends the subscription.
func (g *GraphServer) Lifecycle(id, event string) error {
	g.mu.Lock()
	sub := g.subs[id]
	if sub != nil && event == "subscriptionRemoved" {
		delete(g.subs, id)
	}
	var exp time.Time
	if sub != nil {
		exp = sub.Expiration
	}
	g.mu.Unlock()
	if sub == nil {
		return fmt.Errorf("lifecycle %s: no subscription %s", event, id)
	}
	if event == "subscriptionRemoved" {
		sub.stop()
	}
	target := sub.LifecycleURL
	if target == "" {
		target = sub.NotificationURL
	}
	return g.post(target, map[string]any{"value": []any{map[string]any{"subscriptionId": sub.ID, "subscriptionExpirationDateTime": exp.Format(time.RFC3339),
		"tenantId": sub.tenant, "clientState": sub.ClientState, "lifecycleEvent": event}}})
}

// stopSubs ends every subscription's watcher, when the simulator closes.
func (g *GraphServer) stopSubs() {
	g.mu.Lock()
	subs := g.subs
	g.subs = map[string]*graphSub{}
	g.mu.Unlock()
	for _, sub := range subs {
		sub.stop()
	}
}
