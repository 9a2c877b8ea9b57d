package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The EWS side of the simulator: the SOAP subset a polling client uses
// (GetFolder, FindFolder, SyncFolderItems, GetItem, UpdateItem, MoveItem,
// DeleteItem) over the same Store as IMAP, with app-only Bearer tokens and
// ExchangeImpersonation as Exchange Online requires. Requests are read by
// local element names, so any namespace prefixes work; the path is matched
// case-insensitively.

const ewsPath = "/EWS/Exchange.asmx"

// xnode is a parsed XML element, by local name.
type xnode struct {
	name  string
	attrs map[string]string
	kids  []*xnode
	text  string
}

func parseXML(r io.Reader) (*xnode, error) {
	dec := xml.NewDecoder(r)
	root := &xnode{}
	stack := []*xnode{root}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			top := stack[len(stack)-1]
			top.kids = append(top.kids, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			stack[len(stack)-1].text += string(t)
		}
	}
	return root, nil
}

func (n *xnode) child(name string) *xnode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if strings.EqualFold(k.name, name) {
			return k
		}
	}
	return nil
}

// find walks a path of local names.
func (n *xnode) find(path ...string) *xnode {
	for _, p := range path {
		n = n.child(p)
	}
	return n
}

func (n *xnode) all(name string) []*xnode {
	var out []*xnode
	var walk func(*xnode)
	walk = func(x *xnode) {
		for _, k := range x.kids {
			if strings.EqualFold(k.name, name) {
				out = append(out, k)
			}
			walk(k)
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

const soapHead = `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` +
	`<s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="7228" MinorBuildNumber="17" Version="V2018_01_08" ` +
	`xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body>`

func writeSOAP(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, soapHead+body+`</s:Body></s:Envelope>`)
}

func writeFault(w http.ResponseWriter, code, text string, backoff time.Duration) {
	var xmlDetail string
	if backoff > 0 {
		xmlDetail = fmt.Sprintf(`<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">%d</t:Value></t:MessageXml>`, backoff.Milliseconds())
	}
	writeSOAP(w, http.StatusInternalServerError, fmt.Sprintf(`<s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:%s</faultcode>`+
		`<faultstring xml:lang="en-US">%s</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">%s</e:ResponseCode>`+
		`<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">%s</e:Message>%s</detail></s:Fault>`, code, esc(text), code, esc(text), xmlDetail))
}

// EWSUnavailable makes the next n EWS requests for mailbox answer HTTP 503,
// as IIS does when its request queue is full.
func (s *Sim) EWSUnavailable(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.ews503[strings.ToLower(mailbox)] += n
}

// BlockEWS makes Exchange refuse EWS to an app, as Exchange Online does
// for apps not listed in EwsAllowedAppIDs once a tenant's EWS is off.
func (s *Sim) BlockEWS(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.ewsBlocked[strings.ToLower(clientID)] = true
}

// EWSBusy makes the next n EWS requests for mailbox fail with an
// ErrorServerBusy SOAP fault carrying BackOffMilliseconds.
func (s *Sim) EWSBusy(mailbox string, n int, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	s.faults.ewsBusy[m] += n
	s.faults.ewsBusyMs[m] = int(backoff / time.Millisecond)
}

func (s *Sim) handleEWS(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.URL.Path, ewsPath) {
		http.NotFound(w, r)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := s.verify(tok)
	if !ok || err != nil || !slices.Contains(c.Roles, "full_access_as_app") {
		w.Header().Set("x-ms-diagnostics", `2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	blockedApp := s.faults.ewsBlocked[strings.ToLower(c.AppID)]
	s.mu.Unlock()
	if blockedApp {
		writeFault(w, "ErrorAccessDenied", "Access is denied. EWS is disabled for this application by the organization's EwsEnabled and EwsAllowedAppIDs settings.", 0)
		return
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
	switch {
	case mailbox == "":
		writeFault(w, "ErrorInvalidExchangeImpersonationHeaderData", "ExchangeImpersonation SOAP header must be present for this type of OAuth token.", 0)
		return
	case !s.store.HasMailbox(mailbox):
		writeFault(w, "ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.", 0)
		return
	case !s.allowed(c, "full_access_as_app", mailbox):
		writeFault(w, "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.", 0)
		return
	}
	s.mu.Lock()
	unavailable := s.faults.ews503[mailbox] > 0
	if unavailable {
		s.faults.ews503[mailbox]--
	}
	busy := s.faults.ewsBusy[mailbox] > 0
	if busy {
		s.faults.ewsBusy[mailbox]--
	}
	ms := s.faults.ewsBusyMs[mailbox]
	s.mu.Unlock()
	if unavailable {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if busy {
		writeFault(w, "ErrorServerBusy", "The server cannot service this request right now. Try again later.", time.Duration(ms)*time.Millisecond)
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
		msgs = s.ewsFindFolder(mailbox)
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
func (s *Sim) ewsSubscribe(mailbox string, op *xnode) []string {
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
func (s *Sim) ExpireSubscriptions() int {
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
func (s *Sim) ewsStream(w http.ResponseWriter, r *http.Request, mailbox string, op *xnode) {
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

func okMsg(op, inner string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>%s</m:%sResponseMessage>`, op, inner, op)
}

func errMsg(op, code, text string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText><m:ResponseCode>%s</m:ResponseCode>`+
		`<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>`, op, esc(text), code, op)
}

// ewsFolder resolves a DistinguishedFolderId or FolderId. Called with the
// store lock held.
func (s *Sim) ewsFolder(mailbox string, n *xnode) *folder {
	mb := s.store.boxes[mailbox]
	if mb == nil || n == nil {
		return nil
	}
	if d := n.child("DistinguishedFolderId"); d != nil {
		switch strings.ToLower(d.attrs["Id"]) {
		case "inbox":
			return mb.folders["INBOX"]
		case "deleteditems":
			if f := mb.folders["deleted items"]; f != nil {
				return f
			}
			return s.store.newFolderLocked(mb, "Deleted Items")
		}
		return nil
	}
	if f := n.child("FolderId"); f != nil {
		for _, x := range mb.folders {
			if x.id == f.attrs["Id"] {
				return x
			}
		}
	}
	return nil
}

func displayName(f *folder) string {
	if f.name == "INBOX" {
		return "Inbox"
	}
	return f.name
}

func folderXML(f *folder) string {
	fi := f.infoLocked()
	return fmt.Sprintf(`<t:Folder><t:FolderId Id="%s" ChangeKey="AQAAAA"/><t:ParentFolderId Id="msgfolderroot" ChangeKey="AQAAAA"/><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>%s</t:DisplayName><t:TotalCount>%d</t:TotalCount>`+
		`<t:ChildFolderCount>0</t:ChildFolderCount><t:UnreadCount>%d</t:UnreadCount></t:Folder>`, f.id, esc(displayName(f)), fi.Total, fi.Unread)
}

func (s *Sim) ewsGetFolder(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var out []string
	for _, id := range op.child("FolderIds").kids {
		wrap := &xnode{kids: []*xnode{id}}
		switch id := strings.ToLower(id.attrs["Id"]); id {
		case "root", "msgfolderroot":
			out = append(out, okMsg("GetFolder", fmt.Sprintf(`<m:Folders><t:Folder><t:FolderId Id="%s" ChangeKey="AQAAAA"/><t:FolderClass>IPF.Note</t:FolderClass>`+
				`<t:DisplayName>%s</t:DisplayName><t:TotalCount>0</t:TotalCount><t:ChildFolderCount>%d</t:ChildFolderCount><t:UnreadCount>0</t:UnreadCount></t:Folder></m:Folders>`,
				id, map[string]string{"root": "Root", "msgfolderroot": "Top of Information Store"}[id], len(s.store.boxes[mailbox].folders))))
			continue
		}
		f := s.ewsFolder(mailbox, wrap)
		if f == nil {
			out = append(out, errMsg("GetFolder", "ErrorFolderNotFound", "The specified folder could not be found in the store."))
			continue
		}
		out = append(out, okMsg("GetFolder", "<m:Folders>"+folderXML(f)+"</m:Folders>"))
	}
	return out
}

func (s *Sim) ewsFindFolder(mailbox string) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	mb := s.store.boxes[mailbox]
	var b strings.Builder
	names := make([]string, 0, len(mb.folders))
	for k := range mb.folders {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b.WriteString(folderXML(mb.folders[k]))
	}
	return []string{okMsg("FindFolder", fmt.Sprintf(`<m:RootFolder IndexedPagingOffset="%d" TotalItemsInView="%d" IncludesLastItemInRange="true"><t:Folders>%s</t:Folders></m:RootFolder>`,
		len(names), len(names), b.String()))}
}

// syncState is "<folder id>:<last UID reported>", base64: opaque to clients.
func (s *Sim) ewsSync(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	f := s.ewsFolder(mailbox, op.child("SyncFolderId"))
	if f == nil {
		return []string{errMsg("SyncFolderItems", "ErrorFolderNotFound", "The specified folder could not be found in the store.")}
	}
	// The state is "<folder id>/<uidvalidity>:<last UID>:<last change>".
	var last uint64
	lastChange := uint64(len(f.changes)) // a first sync lists items as they are now
	if st := op.child("SyncState"); st != nil && strings.TrimSpace(st.text) != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.text))
		parts := strings.Split(string(raw), ":")
		var perr1, perr2 error
		if len(parts) == 3 {
			last, perr1 = strconv.ParseUint(parts[1], 10, 32)
			lastChange, perr2 = strconv.ParseUint(parts[2], 10, 64)
		}
		if err != nil || len(parts) != 3 || perr1 != nil || perr2 != nil || parts[0] != f.id+"/"+strconv.FormatUint(uint64(f.uidValidity), 10) ||
			lastChange > uint64(len(f.changes)) {
			return []string{errMsg("SyncFolderItems", "ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")}
		}
	}
	firstNew := last
	max := 512
	if m := op.child("MaxChangesReturned"); m != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(m.text)); err == nil && n > 0 {
			max = min(n, 512)
		}
	}
	var b strings.Builder
	count, more := 0, false
	for _, m := range f.msgs {
		if uint64(m.UID) <= last {
			continue
		}
		if count == max {
			more = true
			break
		}
		fmt.Fprintf(&b, `<t:Create><t:Message><t:ItemId Id="%s" ChangeKey="CQAAAA"/><t:DateTimeReceived>%s</t:DateTimeReceived><t:Size>%d</t:Size><t:IsRead>%t</t:IsRead></t:Message></t:Create>`,
			m.ItemID, m.Received.UTC().Format(time.RFC3339), len(m.Raw), m.Seen())
		last = uint64(m.UID)
		count++
	}
	// Then what happened to items the client already knows.
	for _, c := range f.changes[lastChange:] {
		if more || count == max {
			more = true
			break
		}
		lastChange = c.seq
		if uint64(c.uid) > firstNew {
			continue // the client learns its current state from the Create
		}
		if c.kind == "delete" {
			fmt.Fprintf(&b, `<t:Delete><t:ItemId Id="%s" ChangeKey="CQAAAA"/></t:Delete>`, c.itemID)
		} else {
			fmt.Fprintf(&b, `<t:ReadFlagChange><t:ItemId Id="%s" ChangeKey="CQAAAA"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>`, c.itemID)
		}
		count++
	}
	state := base64.StdEncoding.EncodeToString([]byte(f.id + "/" + strconv.FormatUint(uint64(f.uidValidity), 10) + ":" +
		strconv.FormatUint(last, 10) + ":" + strconv.FormatUint(lastChange, 10)))
	return []string{okMsg("SyncFolderItems", fmt.Sprintf(`<m:SyncState>%s</m:SyncState><m:IncludesLastItemInRange>%t</m:IncludesLastItemInRange><m:Changes>%s</m:Changes>`,
		state, !more, b.String()))}
}

// item finds a message by ItemId in any folder. Called with the store lock held.
func (s *Sim) item(mailbox, id string) (*folder, *Message) {
	mb := s.store.boxes[mailbox]
	if mb == nil {
		return nil, nil
	}
	for _, f := range mb.folders {
		for _, m := range f.msgs {
			if m.ItemID == id {
				return f, m
			}
		}
	}
	return nil, nil
}

func (s *Sim) ewsGetItem(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	mime := false
	if n := op.find("ItemShape", "IncludeMimeContent"); n != nil && (strings.TrimSpace(n.text) == "true" || strings.TrimSpace(n.text) == "1") {
		mime = true
	}
	headers := false
	for _, f := range op.all("FieldURI") {
		switch f.attrs["FieldURI"] {
		case "item:InternetMessageHeaders":
			headers = true
		case "item:MimeContent":
			mime = true
		}
	}
	var out []string
	for _, id := range op.child("ItemIds").kids {
		_, m := s.item(mailbox, id.attrs["Id"])
		if m == nil {
			out = append(out, errMsg("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
			continue
		}
		var b strings.Builder
		b.WriteString("<m:Items><t:Message>")
		if mime {
			fmt.Fprintf(&b, `<t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>`, base64.StdEncoding.EncodeToString(m.Raw))
		}
		b.WriteString(itemProps(m))
		if headers {
			b.WriteString("<t:InternetMessageHeaders>")
			head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
			for _, line := range strings.Split(strings.ReplaceAll(string(head), "\r\n ", " "), "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok {
					fmt.Fprintf(&b, `<t:InternetMessageHeader HeaderName="%s">%s</t:InternetMessageHeader>`, esc(k), esc(strings.TrimSpace(v)))
				}
			}
			b.WriteString("</t:InternetMessageHeaders>")
		}
		b.WriteString("</t:Message></m:Items>")
		out = append(out, okMsg("GetItem", b.String()))
	}
	return out
}

// itemProps are the item properties the simulator returns.
func itemProps(m *Message) string {
	subject := ""
	if msg, err := mail.ReadMessage(bytes.NewReader(m.Raw)); err == nil {
		subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	}
	return fmt.Sprintf(`<t:ItemId Id="%s" ChangeKey="CQAAAA"/><t:Subject>%s</t:Subject><t:DateTimeReceived>%s</t:DateTimeReceived><t:Size>%d</t:Size><t:IsRead>%t</t:IsRead>`,
		m.ItemID, esc(subject), m.Received.UTC().Format(time.RFC3339), len(m.Raw), m.Seen())
}

// ewsFindItem pages through a folder (IndexedPageItemView), newest first
// as Exchange lists them.
func (s *Sim) ewsFindItem(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	f := s.ewsFolder(mailbox, op.child("ParentFolderIds"))
	if f == nil {
		return []string{errMsg("FindItem", "ErrorFolderNotFound", "The specified folder could not be found in the store.")}
	}
	offset, max := 0, 1000
	if v := op.child("IndexedPageItemView"); v != nil {
		offset, _ = strconv.Atoi(v.attrs["Offset"])
		if n, err := strconv.Atoi(v.attrs["MaxEntriesReturned"]); err == nil && n > 0 {
			max = min(n, 1000)
		}
	}
	msgs := slices.Clone(f.msgs)
	slices.Reverse(msgs)
	end := min(len(msgs), offset+max)
	var b strings.Builder
	for _, m := range msgs[min(offset, end):end] {
		b.WriteString("<t:Message>" + itemProps(m) + "</t:Message>")
	}
	return []string{okMsg("FindItem", fmt.Sprintf(`<m:RootFolder IndexedPagingOffset="%d" TotalItemsInView="%d" IncludesLastItemInRange="%t"><t:Items>%s</t:Items></m:RootFolder>`,
		end, len(msgs), end >= len(msgs), b.String()))}
}

func (s *Sim) ewsUpdate(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var out []string
	for _, ch := range op.all("ItemChange") {
		f, m := s.item(mailbox, ch.child("ItemId").attrs["Id"])
		if m == nil {
			out = append(out, errMsg("UpdateItem", "ErrorItemNotFound", "The specified object was not found in the store."))
			continue
		}
		for _, isRead := range ch.all("IsRead") {
			v := strings.TrimSpace(isRead.text)
			on := v == "true" || v == "1"
			if on && !m.Seen() {
				s.store.actionLocked(mailbox, f.name, m.UID, "seen")
			}
			setFlag(m, `\Seen`, on)
		}
		out = append(out, okMsg("UpdateItem", fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="CQAAAB"/></t:Message></m:Items>`, m.ItemID)))
	}
	return out
}

// ewsMove serves MoveItem and DeleteItem: the item leaves its folder (a
// move gets a new ItemId, as in Exchange).
func (s *Sim) ewsMove(mailbox string, op *xnode, action string) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	opName := "MoveItem"
	var to *folder
	if action == "moved" {
		to = s.ewsFolder(mailbox, op.child("ToFolderId"))
		if to == nil {
			return []string{errMsg(opName, "ErrorFolderNotFound", "The specified folder could not be found in the store.")}
		}
	} else {
		opName = "DeleteItem"
		if strings.EqualFold(op.attrs["DeleteType"], "MoveToDeletedItems") {
			to = s.ewsFolder(mailbox, &xnode{kids: []*xnode{{name: "DistinguishedFolderId", attrs: map[string]string{"Id": "deleteditems"}}}})
		}
	}
	var out []string
	for _, id := range op.child("ItemIds").kids {
		f, m := s.item(mailbox, id.attrs["Id"])
		if m == nil {
			out = append(out, errMsg(opName, "ErrorItemNotFound", "The specified object was not found in the store."))
			continue
		}
		s.store.actionLocked(mailbox, f.name, m.UID, action)
		f.msgs = slices.DeleteFunc(f.msgs, func(x *Message) bool { return x == m })
		inner := ""
		if to != nil {
			c := to.appendLocked(m.Raw, m.Received, m.Flags)
			if action == "moved" {
				inner = fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="CQAAAA"/></t:Message></m:Items>`, c.ItemID)
			}
		}
		out = append(out, okMsg(opName, inner))
	}
	return out
}
