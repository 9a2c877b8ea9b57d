package graph

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mailpoller/mailpoller/source"
)

// wellKnown are Graph's well-known folder names a configured name may
// use, with the display names Exchange gives them in English.
var wellKnown = map[string]string{
	"inbox": "inbox", "deleteditems": "deleteditems", "deleted items": "deleteditems", "archive": "archive",
	"junkemail": "junkemail", "junk email": "junkemail", "sentitems": "sentitems", "sent items": "sentitems", "drafts": "drafts",
}

// Folder is what the client reads of a mail folder.
type Folder struct {
	ID     string `json:"id"`
	Name   string `json:"displayName"`
	Total  int    `json:"totalItemCount"`
	Unread int    `json:"unreadItemCount"`
}

const folderSelect = "$select=id,displayName,totalItemCount,unreadItemCount"

// ErrFolderNotFound is returned (wrapped) by Client.Folder when a folder
// of the path does not exist.
var ErrFolderNotFound = fmt.Errorf("folder not found: %w", source.ErrPermanent)

// Folder resolves a configured folder of mailbox: a well-known name
// (inbox, deleteditems, …) or a path of display names from the top of
// the mailbox, "/"-separated, such as "Inbox/Processed". Each level is
// matched case-insensitively among the children of the one before, so
// two folders of the same name in different places are not confused.
func (c *Client) Folder(ctx context.Context, mailbox, path string) (Folder, error) {
	return c.folder(ctx, mailbox, path, false)
}

// EnsureFolder is Folder that creates the levels of path that are
// missing, each under its parent.
func (c *Client) EnsureFolder(ctx context.Context, mailbox, path string) (Folder, error) {
	return c.folder(ctx, mailbox, path, true)
}

func (c *Client) folder(ctx context.Context, mailbox, path string, create bool) (Folder, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var f Folder
	first := true
	for i, name := range parts {
		if name == "" {
			continue
		}
		list := userPath(mailbox) + "/mailFolders"
		if first {
			first = false
			if wk, ok := wellKnown[strings.ToLower(name)]; ok {
				err := c.getJSON(ctx, request{method: "GET", url: userPath(mailbox) + "/mailFolders/" + wk + "?" + folderSelect,
					mailbox: mailbox, op: "user folder " + wk}, &f)
				if err != nil {
					return Folder{}, err
				}
				continue
			}
		} else {
			list += "/" + url.PathEscape(f.ID) + "/childFolders"
		}
		next, err := c.child(ctx, mailbox, list+"?$top=100&"+folderSelect, name)
		if errors.Is(err, ErrFolderNotFound) && create {
			err = c.getJSON(ctx, request{method: "POST", url: list, body: map[string]string{"displayName": name},
				mailbox: mailbox, op: "create folder " + name}, &next)
		}
		if err != nil {
			return Folder{}, fmt.Errorf("folder %q: %w", strings.Join(parts[:i+1], "/"), err)
		}
		f = next
	}
	if f.ID == "" {
		return Folder{}, fmt.Errorf("folder %q: empty name: %w", path, source.ErrPermanent)
	}
	return f, nil
}

// child finds name in the folder list at u, following its pages.
func (c *Client) child(ctx context.Context, mailbox, u, name string) (Folder, error) {
	for pages := 0; u != "" && pages < 1000; pages++ {
		var page struct {
			Value []Folder `json:"value"`
			Next  string   `json:"@odata.nextLink"`
		}
		if err := c.getJSON(ctx, request{method: "GET", url: u, mailbox: mailbox, op: "user folders"}, &page); err != nil {
			return Folder{}, err
		}
		for _, f := range page.Value {
			if strings.EqualFold(f.Name, name) {
				return f, nil
			}
		}
		if page.Next == "" {
			break
		}
		var err error
		if u, err = c.link(page.Next); err != nil {
			return Folder{}, err
		}
	}
	return Folder{}, ErrFolderNotFound
}
