package ews

import (
	"context"
	"errors"
	"fmt"
)

// actionBatch bounds the items of one UpdateItem, MoveItem or DeleteItem.
const actionBatch = 50

// MarkRead sets message:IsRead on ids with UpdateItem (SaveOnly,
// AlwaysOverwrite, SuppressReadReceipts so no read receipt is sent). Items
// that failed are reported together as a joined error of *ResponseError
// values, each wrapped with its item id.
func (c *Client) MarkRead(ctx context.Context, mailbox string, ids []ItemID) error {
	return c.batched(ctx, "UpdateItem", mailbox, ids, func(r *request, ids []ItemID) {
		r.open("m:UpdateItem", "MessageDisposition", "SaveOnly", "ConflictResolution", "AlwaysOverwrite", "SuppressReadReceipts", "true")
		r.open("m:ItemChanges")
		for _, id := range ids {
			r.open("t:ItemChange")
			if id.ChangeKey != "" {
				r.empty("t:ItemId", "Id", id.ID, "ChangeKey", id.ChangeKey)
			} else {
				r.empty("t:ItemId", "Id", id.ID)
			}
			r.open("t:Updates")
			r.open("t:SetItemField")
			r.empty("t:FieldURI", "FieldURI", "message:IsRead")
			r.open("t:Message")
			r.elem("t:IsRead", "true")
			r.close("t:Message")
			r.close("t:SetItemField")
			r.close("t:Updates")
			r.close("t:ItemChange")
		}
		r.close("m:ItemChanges")
		r.close("m:UpdateItem")
	}, nil)
}

// MoveItems moves ids to folder to and returns their new ids in the order
// of ids (a zero ItemID where the move failed, with the failure in the
// joined error).
func (c *Client) MoveItems(ctx context.Context, mailbox string, ids []ItemID, to FolderID) ([]ItemID, error) {
	out := make([]ItemID, 0, len(ids))
	err := c.batched(ctx, "MoveItem", mailbox, ids, func(r *request, ids []ItemID) {
		r.open("m:MoveItem")
		r.open("m:ToFolderId")
		r.folderID(to, mailbox)
		r.close("m:ToFolderId")
		r.itemIDs(ids)
		r.close("m:MoveItem")
	}, func(m *node, failed bool) {
		if failed {
			out = append(out, ItemID{})
			return
		}
		out = append(out, itemID(m.child(nsMessages, "Items").first().child(nsTypes, "ItemId")))
	})
	if len(out) != len(ids) {
		return nil, err
	}
	return out, err
}

// DeleteItems deletes ids. deleteType is HardDelete, SoftDelete or
// MoveToDeletedItems (the default when empty).
func (c *Client) DeleteItems(ctx context.Context, mailbox string, ids []ItemID, deleteType string) error {
	if deleteType == "" {
		deleteType = "MoveToDeletedItems"
	}
	return c.batched(ctx, "DeleteItem", mailbox, ids, func(r *request, ids []ItemID) {
		r.open("m:DeleteItem", "DeleteType", deleteType)
		r.itemIDs(ids)
		r.close("m:DeleteItem")
	}, nil)
}

// batched sends op for ids in batches and collects per-item errors. each,
// when set, sees every response message in order.
func (c *Client) batched(ctx context.Context, op, mailbox string, ids []ItemID, build func(*request, []ItemID), each func(m *node, failed bool)) error {
	var errs []error
	for start := 0; start < len(ids); start += actionBatch {
		batch := ids[start:min(start+actionBatch, len(ids))]
		r := c.newRequest(mailbox)
		build(r, batch)
		body, err := c.call(ctx, op, mailbox, r.bytes())
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("%s of %d items in %s: %w", op, len(batch), mailbox, err))...)
		}
		msgs, err := responseMessages(body, op)
		if err == nil && len(msgs) != len(batch) {
			err = fmt.Errorf("%w: %d response messages for %d items", errDecode, len(msgs), len(batch))
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("%s in %s: %w", op, mailbox, err))...)
		}
		for i, m := range msgs {
			e := messageError(m)
			if e != nil {
				errs = append(errs, fmt.Errorf("%s item %s: %w", op, batch[i].ID, e))
			}
			if each != nil {
				each(m, e != nil)
			}
		}
	}
	return errors.Join(errs...)
}
