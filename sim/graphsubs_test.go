package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestGraphSubscriptions(t *testing.T) {
	e := newGraphEnv(t)
	notes := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, tok)
			return
		}
		var body struct{ Value []map[string]any }
		json.NewDecoder(r.Body).Decode(&body)
		for _, v := range body.Value {
			notes <- v
		}
		w.WriteHeader(202)
	}))
	defer hook.Close()
	var sub map[string]any
	st, _ := e.do("POST", "/subscriptions", map[string]any{"changeType": "created", "notificationUrl": hook.URL, "clientState": "s3cret",
		"resource": "users/support@contoso.test/mailFolders('inbox')/messages", "expirationDateTime": time.Now().Add(time.Hour).Format(time.RFC3339)}, &sub)
	if st != 201 || sub["id"] == nil {
		t.Fatalf("create: %d %v", st, sub)
	}
	m, _ := e.s.Store().Deliver("support@contoso.test", "INBOX", Generate("support@contoso.test", 7), time.Time{})
	next := func() map[string]any {
		select {
		case n := <-notes:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
		}
		return nil
	}
	n := next()
	if n["clientState"] != "s3cret" || n["resourceData"].(map[string]any)["id"] != m.ItemID || n["changeType"] != "created" {
		t.Fatalf("notification: %v", n)
	}
	id := sub["id"].(string)
	if st, _ := e.do("PATCH", "/subscriptions/"+id, map[string]any{"expirationDateTime": time.Now().Add(20000 * time.Minute).Format(time.RFC3339)}, nil); st != 400 {
		t.Fatalf("renew beyond 10080 min: %d", st)
	}
	if st, _ := e.do("PATCH", "/subscriptions/"+id, map[string]any{"expirationDateTime": time.Now().Add(2 * time.Hour).Format(time.RFC3339)}, nil); st != 200 {
		t.Fatalf("renew: %d", st)
	}
	if err := e.s.Graph().Lifecycle(id, "reauthorizationRequired"); err != nil {
		t.Fatal(err)
	}
	if n := next(); n["lifecycleEvent"] != "reauthorizationRequired" {
		t.Fatalf("lifecycle: %v", n)
	}
	if st, _ := e.do("DELETE", "/subscriptions/"+id, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	// A notification URL that does not answer the handshake is refused.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	var eb gerrBody
	if st, _ := e.do("POST", "/subscriptions", map[string]any{"changeType": "created", "notificationUrl": bad.URL,
		"resource": "users/support@contoso.test/mailFolders('inbox')/messages", "expirationDateTime": time.Now().Add(time.Hour).Format(time.RFC3339)}, &eb); st != 400 || eb.Error.Code != "InvalidRequest" { // the code Graph answers (seen in microsoftgraph/nodejs-webhooks-sample#350)
		t.Fatalf("failed handshake: %d %v", st, eb)
	}
}
