package sim

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// deltaState is what a delta token carries (base64 of its JSON), so a
// client can resume after a restart: the folder, the position the last
// round reached (highest UID, change-log length, modClock) and, in a
// $skiptoken, the round's end position and a cursor into it.
type deltaState struct {
	Mailbox string `json:"m"`
	Folder  string `json:"f"`
	UIDVal  uint32 `json:"v"`
	Gen     int    `json:"g"` // ExpireDelta generation
	UID     uint32 `json:"u"`
	Seq     uint64 `json:"s"`
	Clock   uint64 `json:"c"`
	// The round's end (skiptoken only).
	EndUID   uint32 `json:"eu,omitempty"`
	EndSeq   uint64 `json:"es,omitempty"`
	EndClock uint64 `json:"ec,omitempty"`
	Phase    int    `json:"p,omitempty"` // 0 created, 1 updated, 2 deleted
	Cursor   uint64 `json:"k,omitempty"` // last UID (phases 0, 1) or change seq (2) sent
	// The request's options.
	ChangeType string `json:"t,omitempty"`
	Select     string `json:"sel,omitempty"`
	PageSize   int    `json:"n,omitempty"`
	Immutable  bool   `json:"i,omitempty"`
}

func (st deltaState) encode() string {
	b, _ := json.Marshal(st)
	return b64.EncodeToString(b)
}

// deltaItem is one entry of a round.
type deltaItem struct {
	phase  int
	cursor uint64
	obj    map[string]any
}

// delta serves GET …/mailFolders/{id}/messages/delta: a first round lists
// every message of the folder; a $deltatoken round what was created (new
// or moved in), updated (flags) or removed (deleted or moved out) since.
func (g *GraphServer) delta(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	gf, e := g.resolveFolder(mailbox, q.segs[3])
	if e != nil {
		return nil, e
	}
	if gf.f == nil {
		return nil, gerr(400, "ErrorInvalidParameter", "Delta is not supported on this folder.")
	}
	f := gf.f
	g.mu.Lock()
	gen := g.deltaGen[mailbox]
	g.mu.Unlock()
	var st deltaState
	skip, tok := q.query.Get("$skiptoken"), q.query.Get("$deltatoken")
	if t := skip + tok; t != "" {
		raw, err := b64.DecodeString(t)
		if err != nil || json.Unmarshal(raw, &st) != nil || st.Mailbox != mailbox || st.Folder != f.id ||
			st.UIDVal != f.uidValidity || st.Gen != gen || st.Seq > uint64(len(f.changes)) {
			return nil, errSyncState
		}
	} else {
		st = deltaState{Mailbox: mailbox, Folder: f.id, UIDVal: f.uidValidity, Gen: gen,
			ChangeType: strings.ToLower(q.query.Get("changeType")), Select: q.query.Get("$select")}
		st.Immutable = q.immut
	}
	if skip == "" { // a new round: up to now
		st.EndUID, st.EndSeq, st.EndClock = f.uidNext-1, uint64(len(f.changes)), modClock.Load()
		st.Phase, st.Cursor = 0, 0
	}
	if q.pageSize > 0 {
		st.PageSize = q.pageSize
	}
	size := st.PageSize
	if size == 0 {
		size = 10
	}
	immut := st.Immutable || q.immut
	items := g.deltaItems(f, st, immut, size+1)
	out := map[string]any{"@odata.context": q.base + "/$metadata#Collection(message)"}
	link := q.base + "/users/" + url.PathEscape(mailbox) + "/mailFolders/" + url.PathEscape(f.id) + "/messages/delta?"
	if len(items) > size {
		items = items[:size]
		next := st
		next.Phase, next.Cursor = items[size-1].phase, items[size-1].cursor
		out["@odata.nextLink"] = link + "$skiptoken=" + next.encode()
	} else {
		next := st
		next.UID, next.Seq, next.Clock = st.EndUID, st.EndSeq, st.EndClock
		next.EndUID, next.EndSeq, next.EndClock, next.Phase, next.Cursor = 0, 0, 0, 0, 0
		out["@odata.deltaLink"] = link + "$deltatoken=" + next.encode()
	}
	value := make([]any, 0, len(items))
	for _, it := range items {
		value = append(value, it.obj)
	}
	out["value"] = value
	return jsonResponse(200, out), nil
}

// deltaItems lists up to limit entries of the round st describes, from
// its cursor on. Called with the store lock held.
func (g *GraphServer) deltaItems(f *folder, st deltaState, immut bool, limit int) []deltaItem {
	var out []deltaItem
	want := func(kind string) bool { return st.ChangeType == "" || st.ChangeType == kind }
	add := func(phase int, cursor uint64, obj map[string]any) bool {
		obj["@odata.type"] = "#microsoft.graph.message"
		out = append(out, deltaItem{phase, cursor, obj})
		return len(out) >= limit
	}
	item := func(m *Message) map[string]any {
		return selectProps(messageJSON(m, f, immut), st.Select, "@odata.etag")
	}
	after := func(phase int) uint64 {
		if st.Phase == phase {
			return st.Cursor
		}
		return 0
	}
	if st.Phase <= 0 && want("created") {
		for _, m := range f.msgs {
			if m.UID > st.UID && m.UID <= st.EndUID && uint64(m.UID) > after(0) && add(0, uint64(m.UID), item(m)) {
				return out
			}
		}
	}
	if st.Phase <= 1 && want("updated") {
		for _, m := range f.msgs {
			if m.UID <= st.UID && m.modSeq > st.Clock && m.modSeq <= st.EndClock && uint64(m.UID) > after(1) && add(1, uint64(m.UID), item(m)) {
				return out
			}
		}
	}
	if want("deleted") {
		for _, c := range f.changes[min(st.Seq, uint64(len(f.changes))):min(st.EndSeq, uint64(len(f.changes)))] {
			if c.kind != "delete" || c.uid > st.UID || c.seq <= after(2) {
				continue
			}
			id := c.itemID
			if immut {
				id = c.immutableID
			}
			if slices.ContainsFunc(f.msgs, func(m *Message) bool { return msgID(m, immut) == id }) {
				continue // moved out and back in: its created entry stands
			}
			if add(2, c.seq, map[string]any{"id": id, "@removed": map[string]any{"reason": "deleted"}}) {
				return out
			}
		}
	}
	return out
}
