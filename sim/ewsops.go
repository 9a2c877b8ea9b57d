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

// The EWS operations on the shared Store, and the SOAP they read and write.

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

func okMsg(op, inner string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>%s</m:%sResponseMessage>`, op, inner, op)
}

func errMsg(op, code, text string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText><m:ResponseCode>%s</m:ResponseCode>`+
		`<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>`, op, esc(text), code, op)
}

// ewsFolder resolves a DistinguishedFolderId or FolderId. Called with the
// store lock held.
func (s *EWSServer) ewsFolder(mailbox string, n *xnode) *folder {
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

func (s *EWSServer) ewsGetFolder(mailbox string, op *xnode) []string {
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

func (s *EWSServer) ewsFindFolder(mailbox string) []string {
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
func (s *EWSServer) ewsSync(mailbox string, op *xnode) []string {
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
func (s *EWSServer) item(mailbox, id string) (*folder, *Message) {
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

func (s *EWSServer) ewsGetItem(mailbox string, op *xnode) []string {
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
func (s *EWSServer) ewsFindItem(mailbox string, op *xnode) []string {
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

func (s *EWSServer) ewsUpdate(mailbox string, op *xnode) []string {
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
func (s *EWSServer) ewsMove(mailbox string, op *xnode, action string) []string {
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
