package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
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

func errMsg(op, code, text string) string { return errMsgWith(op, code, text, "") }

// errMsgWith is an error response message with the (empty) elements
// Exchange puts after DescriptiveLinkKey, such as <m:Folders/>.
func errMsgWith(op, code, text, inner string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText><m:ResponseCode>%s</m:ResponseCode>`+
		`<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>%s</m:%sResponseMessage>`, op, esc(text), code, inner, op)
}

// efolder is a folder as EWS shows it: a store folder, or one of the two
// folders above them that the store does not hold, the mailbox's root
// ("root") and its message folder root ("msgfolderroot", the Top of
// Information Store, parent of the top-level store folders).
type efolder struct {
	f    *folder
	root string // "root" or "msgfolderroot" when f is nil
}

func (e efolder) id() string {
	if e.f != nil {
		return e.f.id
	}
	return e.root
}

// ewsError is an error response message's code and text.
type ewsError struct{ code, text string }

var errFolderNotFound = &ewsError{"ErrorFolderNotFound", "The specified folder could not be found in the store."}

// resolveFolderID resolves one FolderId or DistinguishedFolderId element
// (its Mailbox child, if any, must name the mailbox the request works on:
// the impersonated one, or with delegate access the one that Mailbox
// named). Well-known folders the store lacks
// are created on first use, as Exchange has them all. Called with the store
// lock held.
func (s *EWSServer) resolveFolderID(mailbox string, id *xnode) (efolder, *ewsError) {
	mb := s.store.boxes[mailbox]
	if mb == nil || id == nil {
		return efolder{}, errFolderNotFound
	}
	if a := id.find("Mailbox", "EmailAddress"); a != nil && !strings.EqualFold(strings.TrimSpace(a.text), mailbox) {
		return efolder{}, &ewsError{"ErrorFolderNotFound", "The simulator serves only the impersonated mailbox's folders, not those of " + strings.TrimSpace(a.text) + "."}
	}
	ref := id.attrs["Id"]
	switch {
	case strings.EqualFold(id.name, "DistinguishedFolderId"):
		switch name := strings.ToLower(ref); name {
		case "root", "msgfolderroot":
			return efolder{root: name}, nil
		case "archive": // a Graph well-known name, not an EWS one
		default:
			if f := s.store.wellKnownLocked(mb, name); f != nil {
				return efolder{f: f}, nil
			}
		}
	case strings.EqualFold(id.name, "FolderId"):
		switch ref {
		case "root", "msgfolderroot":
			return efolder{root: ref}, nil
		case rootID(mailbox): // the id Graph gives msgfolderroot
			return efolder{root: "msgfolderroot"}, nil
		}
		for _, f := range mb.folders {
			if f.id == ref {
				return efolder{f: f}, nil
			}
		}
	}
	return efolder{}, errFolderNotFound
}

// ewsFolder resolves the first FolderId or DistinguishedFolderId below n
// (such as ParentFolderIds, SyncFolderId or ToFolderId) to a store folder;
// nil when there is none, or it is one of the roots. Called with the store
// lock held.
func (s *EWSServer) ewsFolder(mailbox string, n *xnode) *folder {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if strings.EqualFold(k.name, "DistinguishedFolderId") || strings.EqualFold(k.name, "FolderId") {
			e, err := s.resolveFolderID(mailbox, k)
			if err != nil {
				return nil
			}
			return e.f
		}
	}
	return nil
}

// childrenOf lists the direct child folders of e. Called with the store lock held.
func childrenOf(mb *mailbox, e efolder) []efolder {
	var fs []*folder
	switch {
	case e.f != nil:
		fs = mb.childrenLocked(e.f)
	case e.root == "root":
		return []efolder{{root: "msgfolderroot"}}
	default:
		fs = mb.childrenLocked(nil)
	}
	out := make([]efolder, len(fs))
	for i, f := range fs {
		out[i] = efolder{f: f}
	}
	return out
}

// descendantsOf lists every folder below e, each followed by its subtree.
// Called with the store lock held.
func descendantsOf(mb *mailbox, e efolder) []efolder {
	var out []efolder
	if e.f == nil && e.root == "root" {
		out = append(out, efolder{root: "msgfolderroot"})
	}
	var parent *folder // msgfolderroot
	if e.f != nil {
		parent = e.f
	}
	for _, f := range mb.descendantsLocked(parent) {
		out = append(out, efolder{f: f})
	}
	return out
}

// folderProps are the folder's properties as folderXML writes them and
// restrictions compare them.
type folderProps struct {
	id, parentID, class, name string
	total, children, unread   int
}

// propsOf reads e's properties. Called with the store lock held.
func propsOf(mb *mailbox, e efolder) folderProps {
	p := folderProps{id: e.id(), class: "IPF.Note", children: len(childrenOf(mb, e))}
	switch {
	case e.f != nil:
		fi := e.f.infoLocked()
		p.name, p.total, p.unread = mb.displayNameLocked(e.f), fi.Total, fi.Unread
		p.parentID = "msgfolderroot"
		if parent := mb.parentLocked(e.f); parent != nil {
			p.parentID = parent.id
		}
	case e.root == "msgfolderroot":
		p.name, p.parentID = "Top of Information Store", "root"
	default:
		p.name = "Root"
	}
	return p
}

// folderXML is a t:Folder with the Default shape's properties and the
// parent. Called with the store lock held.
func folderXML(mb *mailbox, e efolder) string {
	p := propsOf(mb, e)
	parent := ""
	if p.parentID != "" {
		parent = `<t:ParentFolderId Id="` + esc(p.parentID) + `" ChangeKey="AQAAAA"/>`
	}
	return fmt.Sprintf(`<t:Folder><t:FolderId Id="%s" ChangeKey="AQAAAA"/>%s<t:FolderClass>%s</t:FolderClass><t:DisplayName>%s</t:DisplayName><t:TotalCount>%d</t:TotalCount>`+
		`<t:ChildFolderCount>%d</t:ChildFolderCount><t:UnreadCount>%d</t:UnreadCount></t:Folder>`, esc(p.id), parent, p.class, esc(p.name), p.total, p.children, p.unread)
}

func (s *EWSServer) ewsGetFolder(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	mb := s.store.boxes[mailbox]
	var out []string
	for _, id := range op.child("FolderIds").kids {
		e, err := s.resolveFolderID(mailbox, id)
		if err != nil {
			out = append(out, errMsg("GetFolder", err.code, err.text))
			continue
		}
		out = append(out, okMsg("GetFolder", "<m:Folders>"+folderXML(mb, e)+"</m:Folders>"))
	}
	return out
}

// ewsFindFolder serves FindFolder: one response message per parent in
// ParentFolderIds, listing its child folders (Traversal="Shallow") or its
// whole subtree ("Deep"; "SoftDeleted" finds nothing, as the store keeps
// no deleted folders), filtered by the Restriction and paged by an
// IndexedPageFolderView or FractionalPageFolderView.
func (s *EWSServer) ewsFindFolder(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	mb := s.store.boxes[mailbox]
	parents := op.child("ParentFolderIds")
	if parents == nil || len(parents.kids) == 0 {
		return []string{errMsg("FindFolder", "ErrorInvalidRequest", "FindFolder needs a ParentFolderIds element with at least one folder.")}
	}
	traversal := strings.ToLower(op.attrs["Traversal"])
	var out []string
	for _, id := range parents.kids {
		e, err := s.resolveFolderID(mailbox, id)
		if err != nil {
			out = append(out, errMsg("FindFolder", err.code, err.text))
			continue
		}
		var found []efolder
		switch traversal {
		case "deep":
			found = descendantsOf(mb, e)
		case "softdeleted":
		default:
			found = childrenOf(mb, e)
		}
		if r := op.child("Restriction"); r != nil && len(r.kids) > 0 {
			kept := found[:0:0]
			for _, f := range found {
				ok, err := matchRestriction(r.kids[0], propsOf(mb, f))
				if err != nil {
					return []string{errMsg("FindFolder", err.code, err.text)}
				}
				if ok {
					kept = append(kept, f)
				}
			}
			found = kept
		}
		var b strings.Builder
		page, attrs := pageOf(op, len(found), "Folder")
		for _, f := range found[page[0]:page[1]] {
			b.WriteString(folderXML(mb, f))
		}
		out = append(out, okMsg("FindFolder", `<m:RootFolder `+attrs+`><t:Folders>`+b.String()+`</t:Folders></m:RootFolder>`))
	}
	return out
}

// findCountLimit is Exchange's EWSFindCountLimit: the most entries one
// FindFolder or FindItem page returns.
const findCountLimit = 1000

// pageOf applies the request's IndexedPage<kind>View or
// FractionalPage<kind>View to total entries: the [start, end) range to
// return and the RootFolder attributes describing it.
func pageOf(op *xnode, total int, kind string) ([2]int, string) {
	atoi := func(n *xnode, attr string, def int) int {
		if v, err := strconv.Atoi(strings.TrimSpace(n.attrs[attr])); err == nil && v >= 0 {
			return v
		}
		return def
	}
	if v := op.child("FractionalPage" + kind + "View"); v != nil {
		limit := min(atoi(v, "MaxEntriesReturned", findCountLimit), findCountLimit)
		num, den := atoi(v, "Numerator", 0), atoi(v, "Denominator", 1)
		start := total
		if den > 0 && num < den {
			start = num * total / den
		}
		end := min(total, start+limit)
		return [2]int{start, end}, fmt.Sprintf(`NumeratorOffset="%d" AbsoluteDenominator="%d" IncludesLastItemInRange="%t" TotalItemsInView="%d"`,
			end, total, end >= total, total)
	}
	offset, limit, fromEnd := 0, findCountLimit, false
	if v := op.child("IndexedPage" + kind + "View"); v != nil {
		offset = atoi(v, "Offset", 0)
		if n := atoi(v, "MaxEntriesReturned", 0); n > 0 {
			limit = min(n, findCountLimit)
		}
		fromEnd = strings.EqualFold(v.attrs["BasePoint"], "End")
	}
	start := min(offset, total)
	end := min(total, start+limit)
	if fromEnd { // Offset counts back from the end of the view
		end = max(total-offset, 0)
		start = max(end-limit, 0)
	}
	return [2]int{start, end}, fmt.Sprintf(`IndexedPagingOffset="%d" TotalItemsInView="%d" IncludesLastItemInRange="%t"`,
		offset+(end-start), total, end >= total)
}

// matchRestriction evaluates a FindFolder Restriction's search expression
// (And, Or, Not, IsEqualTo, IsNotEqualTo, IsGreaterThan(OrEqualTo),
// IsLessThan(OrEqualTo), Contains, Exists) on a folder's properties.
// Strings compare case-insensitively, as Exchange compares them.
func matchRestriction(n *xnode, p folderProps) (bool, *ewsError) {
	switch strings.ToLower(n.name) {
	case "and", "or":
		and := strings.EqualFold(n.name, "And")
		for _, k := range n.kids {
			ok, err := matchRestriction(k, p)
			if err != nil {
				return false, err
			}
			if ok != and {
				return ok, nil
			}
		}
		return and, nil
	case "not":
		if len(n.kids) != 1 {
			return false, &ewsError{"ErrorInvalidRestriction", "Not takes one search expression."}
		}
		ok, err := matchRestriction(n.kids[0], p)
		return !ok, err
	}
	field := n.child("FieldURI")
	if field == nil {
		return false, &ewsError{"ErrorUnsupportedPathForQuery", "The simulator's folder restrictions compare FieldURI properties only."}
	}
	var str string
	var num int
	isNum := false
	switch field.attrs["FieldURI"] {
	case "folder:DisplayName":
		str = p.name
	case "folder:FolderClass":
		str = p.class
	case "folder:FolderId":
		str = p.id
	case "folder:ParentFolderId":
		str = p.parentID
	case "folder:TotalCount":
		num, isNum = p.total, true
	case "folder:ChildFolderCount":
		num, isNum = p.children, true
	case "folder:UnreadCount":
		num, isNum = p.unread, true
	default:
		return false, &ewsError{"ErrorUnsupportedPathForQuery", "The property " + field.attrs["FieldURI"] + " is not supported in the simulator's folder restrictions."}
	}
	op := strings.ToLower(n.name)
	if op == "exists" {
		return true, nil
	}
	var value string
	if op == "contains" {
		c := n.child("Constant")
		if c == nil {
			return false, &ewsError{"ErrorInvalidRestriction", "Contains needs a Constant."}
		}
		value = c.attrs["Value"]
		s, v := strings.ToLower(str), strings.ToLower(value)
		if strings.EqualFold(n.attrs["ContainmentComparison"], "Exact") {
			s, v = str, value
		}
		switch strings.ToLower(n.attrs["ContainmentMode"]) {
		case "fullstring":
			return s == v, nil
		case "prefixed":
			return strings.HasPrefix(s, v), nil
		default:
			return strings.Contains(s, v), nil
		}
	}
	c := n.find("FieldURIOrConstant", "Constant")
	if c == nil {
		return false, &ewsError{"ErrorInvalidRestriction", n.name + " needs a FieldURIOrConstant with a Constant."}
	}
	value = c.attrs["Value"]
	cmp := strings.Compare(strings.ToLower(str), strings.ToLower(value))
	if isNum {
		v, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return false, &ewsError{"ErrorInvalidValueForProperty", "The value " + value + " is not an integer."}
		}
		cmp = num - v
	}
	switch op {
	case "isequalto":
		return cmp == 0, nil
	case "isnotequalto":
		return cmp != 0, nil
	case "isgreaterthan":
		return cmp > 0, nil
	case "isgreaterthanorequalto":
		return cmp >= 0, nil
	case "islessthan":
		return cmp < 0, nil
	case "islessthanorequalto":
		return cmp <= 0, nil
	}
	return false, &ewsError{"ErrorUnsupportedQueryFilter", "The restriction " + n.name + " is not supported by the simulator."}
}

// ewsCreateFolder serves CreateFolder: each t:Folder of Folders becomes a
// store folder below ParentFolderId (its store name is the parent's path,
// "/" and the DisplayName), so IMAP and Graph see it too. One response
// message per folder; ErrorFolderExists when the parent already has a
// child of that name.
func (s *EWSServer) ewsCreateFolder(mailbox string, op *xnode) []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	mb := s.store.boxes[mailbox]
	folders := op.child("Folders")
	if folders == nil || len(folders.kids) == 0 {
		return []string{errMsgWith("CreateFolder", "ErrorInvalidRequest", "CreateFolder needs a Folders element with at least one folder.", "<m:Folders/>")}
	}
	var parentID *xnode
	if p := op.child("ParentFolderId"); p != nil && len(p.kids) > 0 {
		parentID = p.kids[0]
	}
	parent, perr := s.resolveFolderID(mailbox, parentID)
	if perr == nil && parent.f == nil && parent.root == "root" {
		perr = &ewsError{"ErrorInvalidRequest", "The simulator creates folders below msgfolderroot only, not in the non-IPM root."}
	}
	var out []string
	for _, n := range folders.kids {
		if perr != nil {
			out = append(out, errMsgWith("CreateFolder", perr.code, perr.text, "<m:Folders/>"))
			continue
		}
		if !strings.EqualFold(n.name, "Folder") {
			out = append(out, errMsgWith("CreateFolder", "ErrorInvalidRequest", "The simulator creates mail folders (t:Folder) only, not "+n.name+".", "<m:Folders/>"))
			continue
		}
		name := ""
		if d := n.child("DisplayName"); d != nil {
			name = d.text
		}
		f, err := s.store.createChildLocked(mb, parent.f, name)
		switch {
		case errors.Is(err, errExists):
			out = append(out, errMsgWith("CreateFolder", "ErrorFolderExists", "A folder with the specified name already exists.", "<m:Folders/>"))
		case err != nil:
			out = append(out, errMsgWith("CreateFolder", "ErrorInvalidRequest", err.Error(), "<m:Folders/>"))
		default:
			out = append(out, okMsg("CreateFolder", `<m:Folders><t:Folder><t:FolderId Id="`+f.id+`" ChangeKey="AQAAAA"/></t:Folder></m:Folders>`))
		}
	}
	return out
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
		f, m := s.item(mailbox, id.attrs["Id"])
		if m == nil {
			out = append(out, errMsg("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
			continue
		}
		var b strings.Builder
		b.WriteString("<m:Items><t:Message>")
		if mime {
			fmt.Fprintf(&b, `<t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>`, base64.StdEncoding.EncodeToString(m.Raw))
		}
		b.WriteString(itemProps(m, f, headers))
		b.WriteString("</t:Message></m:Items>")
		out = append(out, okMsg("GetItem", b.String()))
	}
	return out
}

// itemProps are the item properties the simulator returns, in the order
// of the schema's ItemType and MessageType: id, parent folder, class,
// subject, received time, size, the headers when asked for, sent time,
// attachments flag, sender and recipients, InternetMessageId and IsRead.
func itemProps(m *Message, f *folder, headers bool) string {
	var h mail.Header = map[string][]string{}
	if msg, err := mail.ReadMessage(bytes.NewReader(m.Raw)); err == nil {
		h = msg.Header
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(h.Get("Subject"))
	var b strings.Builder
	fmt.Fprintf(&b, `<t:ItemId Id="%s" ChangeKey="CQAAAA"/>`, m.ItemID)
	if f != nil {
		fmt.Fprintf(&b, `<t:ParentFolderId Id="%s" ChangeKey="AQAAAA"/>`, f.id)
	}
	fmt.Fprintf(&b, `<t:ItemClass>IPM.Note</t:ItemClass><t:Subject>%s</t:Subject><t:DateTimeReceived>%s</t:DateTimeReceived><t:Size>%d</t:Size>`,
		esc(subject), m.Received.UTC().Format(time.RFC3339), len(m.Raw))
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
	sent := m.Received
	if t, err := h.Date(); err == nil {
		sent = t
	}
	ctype, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	fmt.Fprintf(&b, `<t:DateTimeSent>%s</t:DateTimeSent><t:HasAttachments>%t</t:HasAttachments>`, sent.UTC().Format(time.RFC3339), ctype == "multipart/mixed")
	mailboxXML := func(a *mail.Address) string {
		return `<t:Mailbox><t:Name>` + esc(a.Name) + `</t:Name><t:EmailAddress>` + esc(a.Address) + `</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>`
	}
	from, _ := h.AddressList("From")
	if sender, _ := h.AddressList("Sender"); len(sender) > 0 {
		b.WriteString("<t:Sender>" + mailboxXML(sender[0]) + "</t:Sender>")
	} else if len(from) > 0 {
		b.WriteString("<t:Sender>" + mailboxXML(from[0]) + "</t:Sender>")
	}
	for _, r := range []struct{ header, elem string }{{"To", "ToRecipients"}, {"Cc", "CcRecipients"}} {
		if list, _ := h.AddressList(r.header); len(list) > 0 {
			b.WriteString("<t:" + r.elem + ">")
			for _, a := range list {
				b.WriteString(mailboxXML(a))
			}
			b.WriteString("</t:" + r.elem + ">")
		}
	}
	if len(from) > 0 {
		b.WriteString("<t:From>" + mailboxXML(from[0]) + "</t:From>")
	}
	if id := strings.TrimSpace(h.Get("Message-ID")); id != "" {
		b.WriteString("<t:InternetMessageId>" + esc(id) + "</t:InternetMessageId>")
	}
	fmt.Fprintf(&b, `<t:IsRead>%t</t:IsRead>`, m.Seen())
	return b.String()
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
		b.WriteString("<t:Message>" + itemProps(m, f, false) + "</t:Message>")
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
		// Exchange 2010 and later follow the items with the count of
		// conflicts that ConflictResolution settled (none here).
		out = append(out, okMsg("UpdateItem", fmt.Sprintf(`<m:Items><t:Message><t:ItemId Id="%s" ChangeKey="CQAAAB"/></t:Message></m:Items>`+
			`<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>`, m.ItemID)))
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
