package ews

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// syncProperties are asked for on top of IdOnly so a caller can skip read
// or oversized items without a GetItem (MS-OXWSSYNC SyncFolderItems accepts
// an ItemShape with AdditionalProperties).
var syncProperties = []string{"item:DateTimeReceived", "item:Size", "message:IsRead"}

// SyncFolderItems asks for the changes in folder since syncState ("" for a
// first sync, which lists every item as a Create). maxChanges is clamped to
// 1..512. It makes one call; loop while IncludesLastItemInRange is false.
// An invalid syncState is reported as ErrInvalidSyncStateData.
func (c *Client) SyncFolderItems(ctx context.Context, mailbox string, folder FolderID, syncState string, maxChanges int) (*SyncResult, error) {
	maxChanges = min(512, max(1, maxChanges))
	r := c.newRequest(mailbox)
	r.open("m:SyncFolderItems")
	r.open("m:ItemShape")
	r.elem("t:BaseShape", "IdOnly")
	r.fieldURIs(syncProperties...)
	r.close("m:ItemShape")
	r.open("m:SyncFolderId")
	r.folderID(folder, mailbox)
	r.close("m:SyncFolderId")
	if syncState != "" {
		r.elem("m:SyncState", syncState)
	}
	r.elem("m:MaxChangesReturned", strconv.Itoa(maxChanges))
	r.elem("m:SyncScope", "NormalItems")
	r.close("m:SyncFolderItems")

	body, err := c.call(ctx, "SyncFolderItems", mailbox, r.bytes())
	if err != nil {
		return nil, fmt.Errorf("sync folder items of %s in %s: %w", folder, mailbox, err)
	}
	res, err := decodeSync(body)
	if err != nil {
		return nil, fmt.Errorf("sync folder items of %s in %s: %w", folder, mailbox, err)
	}
	return res, nil
}

func decodeSync(body *node) (*SyncResult, error) {
	msgs, err := responseMessages(body, "SyncFolderItems")
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("%w: %d response messages, want 1", errDecode, len(msgs))
	}
	m := msgs[0]
	if e := messageError(m); e != nil {
		return nil, e
	}
	res := &SyncResult{SyncState: m.child(nsMessages, "SyncState").value()}
	last, ok := parseBool(m.child(nsMessages, "IncludesLastItemInRange").value())
	if !ok {
		return nil, fmt.Errorf("%w: IncludesLastItemInRange is %q", errDecode, m.child(nsMessages, "IncludesLastItemInRange").value())
	}
	res.IncludesLastItemInRange = last
	if res.SyncState == "" {
		return nil, fmt.Errorf("%w: SyncFolderItems response has no SyncState", errDecode)
	}
	changes := m.child(nsMessages, "Changes")
	if changes == nil {
		return res, nil
	}
	for _, ch := range changes.children {
		switch {
		case ch.is(nsTypes, "Create"):
			res.Creates = append(res.Creates, itemChange(ch.first()))
		case ch.is(nsTypes, "Update"):
			res.Updates = append(res.Updates, itemChange(ch.first()))
		case ch.is(nsTypes, "Delete"):
			res.Deletes = append(res.Deletes, itemID(ch.child(nsTypes, "ItemId")))
		case ch.is(nsTypes, "ReadFlagChange"):
			read, _ := parseBool(ch.child(nsTypes, "IsRead").value())
			res.ReadFlagChanges = append(res.ReadFlagChanges, ReadFlagChange{ItemID: itemID(ch.child(nsTypes, "ItemId")), IsRead: read})
		}
	}
	for _, c := range res.Creates {
		if c.ID == "" {
			return nil, fmt.Errorf("%w: a Create change has no ItemId", errDecode)
		}
	}
	return res, nil
}

// itemChange reads the item element (t:Message, t:Item, t:MeetingRequest …)
// of a Create or Update change.
func itemChange(it *node) ItemChange {
	ch := ItemChange{ItemID: itemID(it.child(nsTypes, "ItemId"))}
	if b, ok := parseBool(it.child(nsTypes, "IsRead").value()); ok {
		ch.IsRead = &b
	}
	ch.Size, _ = strconv.ParseInt(it.child(nsTypes, "Size").value(), 10, 64)
	ch.Received = parseTime(it.child(nsTypes, "DateTimeReceived").value())
	return ch
}

// parseTime reads an xs:dateTime; zero if absent or malformed.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
