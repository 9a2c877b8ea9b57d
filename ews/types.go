package ews

import "time"

// FolderID names a folder: either a distinguished folder ("inbox",
// "deleteditems", "msgfolderroot") or a folder id from the server.
type FolderID struct {
	ID, ChangeKey string
	Distinguished string
}

// String returns the distinguished name or the id, for logs.
func (f FolderID) String() string {
	if f.Distinguished != "" {
		return f.Distinguished
	}
	return f.ID
}

// ItemID is an EWS item id. ChangeKey identifies a version of the item and
// may be empty.
type ItemID struct {
	ID, ChangeKey string
}

// ItemChange is one change reported by SyncFolderItems. IsRead, Size and
// Received are filled when the server returns them for the item (the client
// asks for them); otherwise IsRead is nil and the others are zero.
type ItemChange struct {
	ItemID
	IsRead   *bool
	Size     int64
	Received time.Time
}

// SyncResult is one SyncFolderItems response.
type SyncResult struct {
	Creates         []ItemChange
	Updates         []ItemChange
	Deletes         []ItemID
	ReadFlagChanges []ReadFlagChange
	// SyncState is the state to pass to the next call.
	SyncState string
	// IncludesLastItemInRange is false when more changes are waiting: call
	// again at once with SyncState.
	IncludesLastItemInRange bool
}

// ReadFlagChange reports that an item was marked read or unread.
type ReadFlagChange struct {
	ItemID
	IsRead bool
}

// MIMEItem is one item returned by GetItemsMIME.
type MIMEItem struct {
	ItemID
	MIME     []byte // decoded MimeContent; nil when Err is set
	Received time.Time
	Size     int64
	IsRead   bool
	// Err is the item's *ResponseError when the server could not return it
	// (for example ErrItemNotFound); the other fields are then empty.
	Err error
}

// Folder is what GetFolder returns.
type Folder struct {
	ID          FolderID
	DisplayName string
	TotalCount  int
	UnreadCount int
}
