package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Graph operations on the shared Store: mail folders and messages.

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("graph request body: %w", err)
	}
	return b, nil
}

// rootID is the id of a mailbox's msgfolderroot.
func rootID(mailbox string) string { return "AAMkAGRvb3Q" + b64.EncodeToString([]byte(mailbox)) }

// gfolder is a resolved folder: a store folder, or the root (f nil).
type gfolder struct {
	f       *folder
	mailbox string
}

func (gf gfolder) id() string {
	if gf.f == nil {
		return rootID(gf.mailbox)
	}
	return gf.f.id
}

// resolveFolder finds a folder by id or well-known name, creating a
// well-known folder on first use as Exchange has them all. Called with the
// store lock held.
func (g *GraphServer) resolveFolder(mailbox, ref string) (gfolder, *graphError) {
	mb := g.store.boxes[mailbox]
	if strings.EqualFold(ref, "msgfolderroot") || ref == rootID(mailbox) {
		return gfolder{mailbox: mailbox}, nil
	}
	if f := g.store.wellKnownLocked(mb, ref); f != nil {
		return gfolder{f, mailbox}, nil
	}
	for _, f := range mb.folders {
		if f.id == ref {
			return gfolder{f, mailbox}, nil
		}
	}
	if !strings.HasPrefix(ref, "AA") || len(ref) < 16 {
		return gfolder{}, errIDMalformed
	}
	return gfolder{}, errItemNotFound
}

// parentOf is a folder's parent in the store's folder tree (the root when
// it is a top-level folder). Called with the store lock held.
func (g *GraphServer) parentOf(mailbox string, f *folder) gfolder {
	return gfolder{g.store.boxes[mailbox].parentLocked(f), mailbox}
}

// children lists a folder's child folders by name. Called with the store lock held.
func (g *GraphServer) children(parent gfolder) []*folder {
	return g.store.boxes[parent.mailbox].childrenLocked(parent.f)
}

// folderJSON is the mailFolder resource. Called with the store lock held.
func (g *GraphServer) folderJSON(gf gfolder) map[string]any {
	out := map[string]any{"id": gf.id(), "childFolderCount": len(g.children(gf)), "isHidden": false}
	if gf.f == nil {
		out["displayName"], out["parentFolderId"] = "Top of Information Store", "AAMkAGNyb290"
		out["unreadItemCount"], out["totalItemCount"] = 0, 0
		return out
	}
	fi := gf.f.infoLocked()
	out["displayName"], out["parentFolderId"] = g.store.boxes[gf.mailbox].displayNameLocked(gf.f), g.parentOf(gf.mailbox, gf.f).id()
	out["unreadItemCount"], out["totalItemCount"] = fi.Unread, fi.Total
	return out
}

// selectProps keeps the $select'ed properties (names matched
// case-insensitively) plus id and the always-kept keys.
func selectProps(obj map[string]any, sel string, keep ...string) map[string]any {
	if strings.TrimSpace(sel) == "" {
		return obj
	}
	out := map[string]any{}
	for _, k := range append(keep, "id") {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	for _, s := range strings.Split(sel, ",") {
		for k, v := range obj {
			if strings.EqualFold(k, strings.TrimSpace(s)) {
				out[k] = v
			}
		}
	}
	return out
}

func (g *GraphServer) getFolder(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	gf, e := g.resolveFolder(mailbox, q.segs[3])
	if e != nil {
		return nil, e
	}
	obj := selectProps(g.folderJSON(gf), q.query.Get("$select"))
	obj["@odata.context"] = q.base + "/$metadata#users('" + url.PathEscape(mailbox) + "')/mailFolders/$entity"
	return jsonResponse(200, obj), nil
}

// listFolders serves mailFolders (children of msgfolderroot) and
// childFolders, paged by $top (default 10) and $skip.
func (g *GraphServer) listFolders(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	parent := gfolder{mailbox: mailbox}
	path := "/users/" + url.PathEscape(mailbox) + "/mailFolders"
	if len(q.segs) > 3 {
		var e *graphError
		if parent, e = g.resolveFolder(mailbox, q.segs[3]); e != nil {
			return nil, e
		}
		path += "/" + url.PathEscape(parent.id()) + "/childFolders"
	}
	top, skip := 10, 0
	if n, err := strconv.Atoi(q.query.Get("$top")); err == nil && n > 0 {
		top = min(n, 1000)
	}
	if n, err := strconv.Atoi(q.query.Get("$skip")); err == nil && n > 0 {
		skip = n
	}
	kids := g.children(parent)
	value := []any{}
	for _, f := range kids[min(skip, len(kids)):min(skip+top, len(kids))] {
		value = append(value, selectProps(g.folderJSON(gfolder{f, mailbox}), q.query.Get("$select")))
	}
	out := map[string]any{"@odata.context": q.base + "/$metadata#users('" + url.PathEscape(mailbox) + "')/mailFolders", "value": value}
	if skip+top < len(kids) {
		v := url.Values{"$top": {strconv.Itoa(top)}, "$skip": {strconv.Itoa(skip + top)}}
		if s := q.query.Get("$select"); s != "" {
			v.Set("$select", s)
		}
		out["@odata.nextLink"] = q.base + path + "?" + v.Encode()
	}
	return jsonResponse(200, out), nil
}

// createFolder serves POST …/mailFolders and …/mailFolders/{id}/childFolders
// {"displayName"}: 201 with the new folder, 409 ErrorFolderExists when the
// parent has a folder of that name.
func (g *GraphServer) createFolder(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	var req struct {
		DisplayName string `json:"displayName"`
	}
	if err := json.Unmarshal(q.body, &req); err != nil || strings.TrimSpace(req.DisplayName) == "" {
		return nil, gerr(400, "ErrorInvalidParameter", "The value of the parameter 'DisplayName' is empty.")
	}
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	parent := gfolder{mailbox: mailbox}
	if len(q.segs) > 3 {
		var e *graphError
		if parent, e = g.resolveFolder(mailbox, q.segs[3]); e != nil {
			return nil, e
		}
	}
	f, err := g.store.createChildLocked(g.store.boxes[mailbox], parent.f, req.DisplayName)
	switch {
	case errors.Is(err, errExists):
		return nil, gerr(409, "ErrorFolderExists", "A folder with the specified name already exists.")
	case err != nil:
		return nil, gerr(400, "ErrorInvalidParameter", err.Error())
	}
	return jsonResponse(201, g.folderJSON(gfolder{f, mailbox})), nil
}

// findMessage finds a message by its id or ImmutableId. Called with the store lock held.
func (g *GraphServer) findMessage(mailbox, id string) (*folder, *Message, *graphError) {
	for _, f := range g.store.boxes[mailbox].folders {
		for _, m := range f.msgs {
			if m.ItemID == id || m.immutableID == id {
				return f, m, nil
			}
		}
	}
	if !strings.HasPrefix(id, "AA") || len(id) < 16 {
		return nil, nil, errIDMalformed
	}
	return nil, nil, errItemNotFound
}

func msgID(m *Message, immut bool) string {
	if immut {
		return m.immutableID
	}
	return m.ItemID
}

func recipients(h mail.Header, key string) []any {
	out := []any{}
	list, _ := h.AddressList(key)
	for _, a := range list {
		out = append(out, map[string]any{"emailAddress": map[string]any{"name": a.Name, "address": a.Address}})
	}
	return out
}

// messageJSON is the message resource, from the MIME. Called with the store lock held.
func messageJSON(m *Message, f *folder, immut bool) map[string]any {
	var h mail.Header = map[string][]string{}
	var body []byte
	if msg, err := mail.ReadMessage(bytes.NewReader(m.Raw)); err == nil {
		h = msg.Header
		body, _ = io.ReadAll(io.LimitReader(msg.Body, 1<<20))
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(h.Get("Subject"))
	sent := m.Received
	if t, err := h.Date(); err == nil {
		sent = t.UTC()
	}
	ctype, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	text := ""
	if ctype == "" || strings.HasPrefix(ctype, "text/") {
		text = string(body)
	}
	preview := strings.Join(strings.Fields(text), " ")
	if r := []rune(preview); len(r) > 255 {
		preview = string(r[:255])
	}
	from := recipients(h, "From")
	changeKey := "CQAAABYAAAA" + strconv.FormatUint(m.modSeq, 36)
	obj := map[string]any{
		"@odata.etag": `W/"` + changeKey + `"`, "id": msgID(m, immut),
		"createdDateTime": m.Received.Format(time.RFC3339), "lastModifiedDateTime": m.Received.Format(time.RFC3339),
		"changeKey": changeKey, "categories": []any{},
		"receivedDateTime": m.Received.Format(time.RFC3339), "sentDateTime": sent.Format(time.RFC3339),
		"hasAttachments": ctype == "multipart/mixed", "internetMessageId": h.Get("Message-ID"),
		"subject": subject, "bodyPreview": preview, "importance": "normal", "parentFolderId": f.id,
		"conversationId":             "AAQk" + b64.EncodeToString([]byte(subject))[:min(16, len(b64.EncodeToString([]byte(subject))))],
		"conversationIndex":          base64.StdEncoding.EncodeToString([]byte(m.ItemID[:16])),
		"isDeliveryReceiptRequested": false, "isReadReceiptRequested": false, "isRead": m.Seen(), "isDraft": false,
		"webLink":                 "https://outlook.office365.com/owa/?ItemID=" + url.QueryEscape(m.ItemID) + "&exvsurl=1&viewmodel=ReadMessageItem",
		"inferenceClassification": "focused",
		"body":                    map[string]any{"contentType": "text", "content": text},
		"toRecipients":            recipients(h, "To"), "ccRecipients": recipients(h, "Cc"), "bccRecipients": recipients(h, "Bcc"),
		"replyTo": recipients(h, "Reply-To"), "flag": map[string]any{"flagStatus": "notFlagged"},
	}
	if len(from) > 0 {
		obj["from"], obj["sender"] = from[0], from[0]
	}
	return obj
}

func (g *GraphServer) messageResponse(status int, mailbox string, m *Message, f *folder, q *graphReq) *graphResponse {
	obj := selectProps(messageJSON(m, f, q.immut), q.query.Get("$select"), "@odata.etag")
	obj["@odata.context"] = q.base + "/$metadata#users('" + url.PathEscape(mailbox) + "')/messages/$entity"
	return jsonResponse(status, obj)
}

func (g *GraphServer) getMessage(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	f, m, e := g.findMessage(mailbox, q.segs[len(q.segs)-1])
	if e != nil {
		return nil, e
	}
	return g.messageResponse(200, mailbox, m, f, q), nil
}

// getValue serves $value: the MIME, as Content-Type text/plain like Graph.
func (g *GraphServer) getValue(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	_, m, e := g.findMessage(mailbox, q.segs[len(q.segs)-2])
	if e != nil {
		return nil, e
	}
	return &graphResponse{status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: slices.Clone(m.Raw)}, nil
}

// patchMessage sets isRead (the other properties are accepted and ignored).
func (g *GraphServer) patchMessage(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	var patch struct {
		IsRead *bool `json:"isRead"`
	}
	if err := json.Unmarshal(q.body, &patch); err != nil {
		return nil, gerr(400, "RequestBodyRead", "Invalid JSON in the request body.")
	}
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	f, m, e := g.findMessage(mailbox, q.segs[3])
	if e != nil {
		return nil, e
	}
	if patch.IsRead != nil {
		if *patch.IsRead && !m.Seen() {
			g.store.actionLocked(mailbox, f.name, m.UID, "seen")
		}
		setFlag(m, `\Seen`, *patch.IsRead)
	}
	return g.messageResponse(200, mailbox, m, f, q), nil
}

// moveLocked moves m from f to to: a new id, the same ImmutableId.
func (g *GraphServer) moveLocked(mailbox string, f *folder, m *Message, to *folder, action string) *Message {
	g.store.actionLocked(mailbox, f.name, m.UID, action)
	f.msgs = slices.DeleteFunc(f.msgs, func(x *Message) bool { return x == m })
	if to == nil {
		return nil
	}
	c := to.appendLocked(m.Raw, m.Received, m.Flags)
	c.immutableID, c.modSeq = m.immutableID, m.modSeq
	return c
}

// moveMessage serves POST …/move {"destinationId"}: 201 with the moved message.
func (g *GraphServer) moveMessage(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	var req struct {
		DestinationID string `json:"destinationId"`
	}
	if err := json.Unmarshal(q.body, &req); err != nil || req.DestinationID == "" {
		return nil, gerr(400, "ErrorInvalidParameter", "The value of the parameter 'DestinationId' is empty.")
	}
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	f, m, e := g.findMessage(mailbox, q.segs[3])
	if e != nil {
		return nil, e
	}
	to, e := g.resolveFolder(mailbox, req.DestinationID)
	if e != nil {
		return nil, e
	}
	if to.f == nil {
		return nil, gerr(400, "ErrorInvalidParameter", "The folder cannot hold messages.")
	}
	c := g.moveLocked(mailbox, f, m, to.f, "moved")
	return g.messageResponse(201, mailbox, c, to.f, q), nil
}

// deleteMessage serves DELETE (to Deleted Items; gone when already there)
// and POST …/permanentDelete: 204.
func (g *GraphServer) deleteMessage(mailbox string, q *graphReq) (*graphResponse, *graphError) {
	g.store.mu.Lock()
	defer g.store.mu.Unlock()
	f, m, e := g.findMessage(mailbox, q.segs[3])
	if e != nil {
		return nil, e
	}
	deleted, _ := g.resolveFolder(mailbox, "deleteditems")
	to := deleted.f
	if q.method != http.MethodDelete || f == to {
		to = nil
	}
	g.moveLocked(mailbox, f, m, to, "deleted")
	return &graphResponse{status: 204, header: http.Header{}}, nil
}
