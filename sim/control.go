package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// control mounts the control API:
//
//	POST /control/deliver?mailbox=<addr>&folder=<name>   body: raw message → {"uid":…, "item_id":…}
//	GET  /control/mailboxes/{mailbox}/{folder}           → [{"uid", "item_id", "seen", "size", "flags"}]
//	POST /control/faults/imap?mailbox=&throttle=&backoff_ms=&not_connected=&drop_fetch=&expire=1
//	POST /control/faults/token?count=   body: TokenFault JSON
//	POST /control/faults/graph?mailbox=&throttle=&unavailable=&retry_after_ms=&unauthorized=&expire_delta=1
func (s *Sim) control(mux *http.ServeMux) {
	mux.HandleFunc("POST /control/deliver", func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 200<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		folder := r.URL.Query().Get("folder")
		if folder == "" {
			folder = "INBOX"
		}
		m, err := s.store.Deliver(r.URL.Query().Get("mailbox"), folder, raw, time.Time{})
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"uid": m.UID, "item_id": m.ItemID})
	})
	mux.HandleFunc("GET /control/mailboxes/{mailbox}/{folder}", func(w http.ResponseWriter, r *http.Request) {
		msgs, err := s.store.Messages(r.PathValue("mailbox"), r.PathValue("folder"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		type row struct {
			UID    uint32   `json:"uid"`
			ItemID string   `json:"item_id"`
			Seen   bool     `json:"seen"`
			Size   int      `json:"size"`
			Flags  []string `json:"flags"`
		}
		out := []row{}
		for _, m := range msgs {
			out = append(out, row{m.UID, m.ItemID, m.Seen(), len(m.Raw), m.Flags})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /control/faults/imap", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mb := q.Get("mailbox")
		n := func(k string) int { v, _ := strconv.Atoi(q.Get(k)); return v }
		if v := n("throttle"); v > 0 {
			s.imap.Throttle(mb, v, time.Duration(n("backoff_ms"))*time.Millisecond)
		}
		if v := n("not_connected"); v > 0 {
			s.imap.NotConnected(mb, v)
		}
		if v := n("drop_fetch"); v > 0 {
			s.imap.DropFetch(mb, v)
		}
		if q.Get("expire") != "" {
			s.imap.ExpireSessions(mb)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /control/faults/graph", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mb := q.Get("mailbox")
		n := func(k string) int { v, _ := strconv.Atoi(q.Get(k)); return v }
		retry := time.Duration(n("retry_after_ms")) * time.Millisecond
		if v := n("throttle"); v > 0 {
			s.graph.Throttle(mb, v, retry)
		}
		if v := n("unavailable"); v > 0 {
			s.graph.Unavailable(mb, v, retry)
		}
		if v := n("unauthorized"); v > 0 {
			s.graph.Unauthorized(v)
		}
		if q.Get("expire_delta") != "" {
			s.graph.ExpireDelta(mb)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /control/faults/token", func(w http.ResponseWriter, r *http.Request) {
		var f TokenFault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		s.tokens.Fail(f, max(n, 1))
		w.WriteHeader(http.StatusNoContent)
	})
}
