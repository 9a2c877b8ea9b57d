package ews

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrFolderNotFound: FindFolder found no folder (or more than one) with the
// name. Permanent: create the folder or fix the name in the config.
var ErrFolderNotFound = errors.New("folder not found")

// errAmbiguous marks an ErrFolderNotFound for a name several folders
// have: nothing is created for it.
var errAmbiguous = errors.New("ambiguous name")

// findFolderPage is the page size of FindFolder (EWSFindCountLimit is 1000).
const findFolderPage = 500

// FindFolder finds the folder name names. A path ("Inbox/Processed")
// is walked from the top of information store one level at a time
// (FindFolder with shallow traversal under each parent), its first level
// a well-known folder (inbox, deleteditems, …) when it is named so, so a
// folder is named by its place. A name without "/" is looked for anywhere
// below msgfolderroot (deep traversal) and must be unique. Matches are
// exact but case-insensitive; when several folders match, one with the
// exact case wins, otherwise the result is ambiguous and an error.
func (c *Client) FindFolder(ctx context.Context, mailbox, name string) (FolderID, error) {
	return c.resolve(ctx, mailbox, name, false)
}

// EnsureFolder is FindFolder that creates what is missing, each missing
// level of a path under its parent (a bare name that is nowhere in the
// mailbox is made under msgfolderroot). An ambiguous name creates nothing.
func (c *Client) EnsureFolder(ctx context.Context, mailbox, name string) (FolderID, error) {
	return c.resolve(ctx, mailbox, name, true)
}

// resolve is FindFolder, creating the missing levels when create is set.
func (c *Client) resolve(ctx context.Context, mailbox, name string, create bool) (FolderID, error) {
	parent := FolderID{Distinguished: "msgfolderroot"}
	find := func(parent FolderID, level string, deep bool) (FolderID, error) {
		id, err := c.findChild(ctx, mailbox, parent, level, deep)
		if create && errors.Is(err, ErrFolderNotFound) && !errors.Is(err, errAmbiguous) {
			return c.CreateFolder(ctx, mailbox, parent, level)
		}
		return id, err
	}
	if !strings.Contains(name, "/") {
		return find(parent, name, true)
	}
	levels := strings.Split(strings.Trim(name, "/"), "/")
	for i, level := range levels {
		if i == 0 && wellKnown[strings.ToLower(level)] {
			parent = FolderID{Distinguished: strings.ToLower(level)}
			continue
		}
		id, err := find(parent, level, false)
		if err != nil {
			if errors.Is(err, ErrFolderNotFound) {
				return FolderID{}, fmt.Errorf("%w: %q has no folder %q in %s: create it or fix the path", ErrFolderNotFound,
					strings.Join(levels[:i], "/"), level, mailbox)
			}
			return FolderID{}, err
		}
		parent = id
	}
	return parent, nil
}

// wellKnown are the DistinguishedFolderId names a path may start with.
var wellKnown = map[string]bool{"inbox": true, "deleteditems": true, "drafts": true, "sentitems": true,
	"junkemail": true, "outbox": true, "archivemsgfolderroot": true, "msgfolderroot": true}

// findChild finds the folder called displayName among parent's children
// (deep: among all its descendants).
func (c *Client) findChild(ctx context.Context, mailbox string, parent FolderID, displayName string, deep bool) (FolderID, error) {
	var matches []Folder
	for offset := 0; ; {
		page, next, last, err := c.findFolderPage(ctx, mailbox, parent, deep, offset)
		if err != nil {
			return FolderID{}, fmt.Errorf("find folder %q in %s: %w", displayName, mailbox, err)
		}
		for _, f := range page {
			if strings.EqualFold(f.DisplayName, displayName) {
				matches = append(matches, f)
			}
		}
		if last || len(page) == 0 || next <= offset {
			break
		}
		offset = next
	}
	if len(matches) == 1 {
		return matches[0].ID, nil
	}
	if len(matches) == 0 {
		return FolderID{}, fmt.Errorf("%w: no folder is named %q in %s (looked below %s): create it or fix the name", ErrFolderNotFound, displayName, mailbox, parent)
	}
	var exact []Folder
	for _, f := range matches {
		if f.DisplayName == displayName {
			exact = append(exact, f)
		}
	}
	if len(exact) == 1 {
		return exact[0].ID, nil
	}
	return FolderID{}, fmt.Errorf("%w (%w): %d folders are named %q in %s: write the folder's path from the top (e.g. Inbox/%s) or rename all but one",
		ErrFolderNotFound, errAmbiguous, len(matches), displayName, mailbox, displayName)
}

// findFolderPage returns one page of parent's children (deep: descendants),
// the offset of the next page and whether this was the last.
func (c *Client) findFolderPage(ctx context.Context, mailbox string, parent FolderID, deep bool, offset int) ([]Folder, int, bool, error) {
	traversal := "Shallow"
	if deep {
		traversal = "Deep"
	}
	r := c.newRequest(mailbox)
	r.open("m:FindFolder", "Traversal", traversal)
	r.open("m:FolderShape")
	r.elem("t:BaseShape", "IdOnly")
	r.fieldURIs("folder:DisplayName")
	r.close("m:FolderShape")
	r.empty("m:IndexedPageFolderView", "MaxEntriesReturned", strconv.Itoa(findFolderPage), "Offset", strconv.Itoa(offset), "BasePoint", "Beginning")
	r.open("m:ParentFolderIds")
	r.folderID(parent, mailbox)
	r.close("m:ParentFolderIds")
	r.close("m:FindFolder")
	body, err := c.call(ctx, "FindFolder", mailbox, r.bytes())
	if err != nil {
		return nil, 0, false, err
	}
	return decodeFindFolder(body)
}

func decodeFindFolder(body *node) ([]Folder, int, bool, error) {
	msgs, err := responseMessages(body, "FindFolder")
	if err != nil {
		return nil, 0, false, err
	}
	if len(msgs) != 1 {
		return nil, 0, false, fmt.Errorf("%w: %d response messages, want 1", errDecode, len(msgs))
	}
	if e := messageError(msgs[0]); e != nil {
		return nil, 0, false, e
	}
	root := msgs[0].child(nsMessages, "RootFolder")
	if root == nil {
		return nil, 0, false, fmt.Errorf("%w: FindFolder response has no RootFolder", errDecode)
	}
	last, ok := parseBool(root.attr("IncludesLastItemInRange"))
	if !ok {
		last = true
	}
	next, err := strconv.Atoi(root.attr("IndexedPagingOffset"))
	if err != nil {
		next = -1
	}
	var out []Folder
	for _, f := range root.child(nsTypes, "Folders").children {
		out = append(out, folder(f))
	}
	return out, next, last, nil
}

// folder reads a t:Folder (or t:CalendarFolder, t:SearchFolder …).
func folder(f *node) Folder {
	id := f.child(nsTypes, "FolderId")
	total, _ := strconv.Atoi(f.child(nsTypes, "TotalCount").value())
	unread, _ := strconv.Atoi(f.child(nsTypes, "UnreadCount").value())
	return Folder{
		ID:          FolderID{ID: id.attr("Id"), ChangeKey: id.attr("ChangeKey")},
		DisplayName: f.child(nsTypes, "DisplayName").value(),
		TotalCount:  total,
		UnreadCount: unread,
	}
}

// GetFolder returns the folder's id, display name and counts. It is the
// cheapest call that proves the app may open the mailbox.
func (c *Client) GetFolder(ctx context.Context, mailbox string, f FolderID) (*Folder, error) {
	r := c.newRequest(mailbox)
	r.open("m:GetFolder")
	r.open("m:FolderShape")
	r.elem("t:BaseShape", "Default")
	r.close("m:FolderShape")
	r.open("m:FolderIds")
	r.folderID(f, mailbox)
	r.close("m:FolderIds")
	r.close("m:GetFolder")
	body, err := c.call(ctx, "GetFolder", mailbox, r.bytes())
	if err != nil {
		return nil, fmt.Errorf("get folder %s of %s: %w", f, mailbox, err)
	}
	fn, err := oneFolder(body, "GetFolder")
	if err != nil {
		return nil, fmt.Errorf("get folder %s of %s: %w", f, mailbox, err)
	}
	out := folder(fn)
	return &out, nil
}

// oneFolder is the t:Folder of op's one response message.
func oneFolder(body *node, op string) (*node, error) {
	msgs, err := responseMessages(body, op)
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("%w: %d response messages, want 1", errDecode, len(msgs))
	}
	if e := messageError(msgs[0]); e != nil {
		return nil, e
	}
	fn := msgs[0].child(nsMessages, "Folders").first()
	if fn == nil {
		return nil, fmt.Errorf("%w: no folder in the response", errDecode)
	}
	return fn, nil
}

// CreateFolder makes a mail folder called name under parent and returns
// its id. A name taken under parent is ErrorFolderExists.
func (c *Client) CreateFolder(ctx context.Context, mailbox string, parent FolderID, name string) (FolderID, error) {
	r := c.newRequest(mailbox)
	r.open("m:CreateFolder")
	r.open("m:ParentFolderId")
	r.folderID(parent, mailbox)
	r.close("m:ParentFolderId")
	r.open("m:Folders")
	r.open("t:Folder")
	r.elem("t:FolderClass", "IPF.Note")
	r.elem("t:DisplayName", name)
	r.close("t:Folder")
	r.close("m:Folders")
	r.close("m:CreateFolder")
	body, err := c.call(ctx, "CreateFolder", mailbox, r.bytes())
	var fn *node
	if err == nil {
		fn, err = oneFolder(body, "CreateFolder")
	}
	if err != nil {
		return FolderID{}, fmt.Errorf("create folder %q in %s: %w", name, mailbox, err)
	}
	return folder(fn).ID, nil
}
