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

// findFolderPage is the page size of FindFolder (EWSFindCountLimit is 1000).
const findFolderPage = 500

// FindFolder looks for a folder named displayName anywhere below the
// mailbox's top of information store (msgfolderroot, deep traversal). The
// match is exact but case-insensitive; when several folders match, one with
// the exact case wins, otherwise the result is ambiguous and an error.
func (c *Client) FindFolder(ctx context.Context, mailbox, displayName string) (FolderID, error) {
	var matches []Folder
	for offset := 0; ; {
		page, next, last, err := c.findFolderPage(ctx, mailbox, offset)
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
		return FolderID{}, fmt.Errorf("%w: no folder is named %q in %s (looked below msgfolderroot): create it or fix the name", ErrFolderNotFound, displayName, mailbox)
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
	return FolderID{}, fmt.Errorf("%w: %d folders are named %q in %s: rename all but one", ErrFolderNotFound, len(matches), displayName, mailbox)
}

// findFolderPage returns one page of every folder below msgfolderroot, the
// offset of the next page and whether this was the last.
func (c *Client) findFolderPage(ctx context.Context, mailbox string, offset int) ([]Folder, int, bool, error) {
	r := newRequest(c.opts.Version, mailbox)
	r.open("m:FindFolder", "Traversal", "Deep")
	r.open("m:FolderShape")
	r.elem("t:BaseShape", "IdOnly")
	r.fieldURIs("folder:DisplayName")
	r.close("m:FolderShape")
	r.empty("m:IndexedPageFolderView", "MaxEntriesReturned", strconv.Itoa(findFolderPage), "Offset", strconv.Itoa(offset), "BasePoint", "Beginning")
	r.open("m:ParentFolderIds")
	r.folderID(FolderID{Distinguished: "msgfolderroot"}, mailbox)
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
	r := newRequest(c.opts.Version, mailbox)
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
	msgs, err := responseMessages(body, "GetFolder")
	if err == nil && len(msgs) != 1 {
		err = fmt.Errorf("%w: %d response messages, want 1", errDecode, len(msgs))
	}
	if err == nil {
		if e := messageError(msgs[0]); e != nil {
			err = e
		}
	}
	if err != nil {
		return nil, fmt.Errorf("get folder %s of %s: %w", f, mailbox, err)
	}
	fn := msgs[0].child(nsMessages, "Folders").first()
	if fn == nil {
		return nil, fmt.Errorf("get folder %s of %s: %w: no folder in the response", f, mailbox, errDecode)
	}
	out := folder(fn)
	return &out, nil
}
