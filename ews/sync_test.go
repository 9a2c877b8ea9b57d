package ews

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestSyncFolderItemsFixtures(t *testing.T) {
	tests := []struct {
		file        string
		creates     []string
		updates     []string
		deletes     []string
		readFlags   []string
		state       string
		last        bool
		firstIsRead *bool
	}{
		{file: "syncfolderitems_page1.xml",
			creates: []string{"AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA==", "AAMkADAwATM0MDAAMS1iNmQ0LTQ3AA==", "AAMkADAwATM0MDAAMS1iNmQ0LTQ4AA=="},
			updates: []string{"AAMkADAwATM0MDAAMS1iNmQ0LTQ5AA=="}, deletes: []string{"AAMkADAwATM0MDAAMS1iNmQ0LTUwAA=="},
			readFlags:   []string{"AAMkADAwATM0MDAAMS1iNmQ0LTUxAA=="},
			state:       "H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0oQiAYBMk2JBAEOzBiM3mkuwdaUcjKasqgcplVmVdZhZAzO2dvPfee++999577733ROnuIu7/ZuZWUDMBYr3s7Idm8b7/0eEjx49Isq1",
			firstIsRead: new(false)},
		{file: "syncfolderitems_last.xml", creates: []string{"AAMkADAwATM0MDAAMS1iNmQ0LTUyAA=="},
			state: "H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBk", last: true, firstIsRead: new(false)},
		{file: "syncfolderitems_empty.xml", state: "H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBkAAAA", last: true},
		{file: "syncfolderitems_defaultns.xml", creates: []string{"AAMkADefaultNs1"}, deletes: []string{"AAMkADefaultNs2"},
			state: "c3RhdGUtZGVmYXVsdC1ucw==", last: true, firstIsRead: new(false)},
		{file: "syncfolderitems_swapped.xml", creates: []string{"AAMkADSwapped1"}, readFlags: []string{"AAMkADSwapped2"},
			state: "c3RhdGUtc3dhcHBlZA==", last: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := newFake(t, serveFile(t, tt.file))
			res, err := f.client(Options{}).SyncFolderItems(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}, "", 512)
			if err != nil {
				t.Fatalf("SyncFolderItems() error = %v", err)
			}
			ids := func(cs []ItemChange) []string {
				var out []string
				for _, c := range cs {
					out = append(out, c.ID)
				}
				return out
			}
			var dels, rfs []string
			for _, d := range res.Deletes {
				dels = append(dels, d.ID)
			}
			for _, r := range res.ReadFlagChanges {
				rfs = append(rfs, r.ID)
			}
			if got := ids(res.Creates); !slices.Equal(got, tt.creates) {
				t.Errorf("Creates = %v, want %v", got, tt.creates)
			}
			if got := ids(res.Updates); !slices.Equal(got, tt.updates) {
				t.Errorf("Updates = %v, want %v", got, tt.updates)
			}
			if !slices.Equal(dels, tt.deletes) {
				t.Errorf("Deletes = %v, want %v", dels, tt.deletes)
			}
			if !slices.Equal(rfs, tt.readFlags) {
				t.Errorf("ReadFlagChanges = %v, want %v", rfs, tt.readFlags)
			}
			if res.SyncState != tt.state || res.IncludesLastItemInRange != tt.last {
				t.Errorf("SyncState, IncludesLastItemInRange = %q, %v, want %q, %v", res.SyncState, res.IncludesLastItemInRange, tt.state, tt.last)
			}
			if tt.firstIsRead != nil {
				if r := res.Creates[0].IsRead; r == nil || *r != *tt.firstIsRead {
					t.Errorf("Creates[0].IsRead = %v, want %v", r, *tt.firstIsRead)
				}
			}
		})
	}
}

func TestSyncFolderItemsPage1Details(t *testing.T) {
	f := newFake(t, serveFile(t, "syncfolderitems_page1.xml"))
	res, err := f.client(Options{}).SyncFolderItems(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Creates[2]
	if c.ChangeKey != "CwAAABYAAAB3" || c.Size != 80000000 || !c.Received.Equal(time.Date(2026, 3, 3, 10, 30, 0, 123e6, time.UTC)) {
		t.Errorf("Creates[2] = %+v", c)
	}
	if !res.ReadFlagChanges[0].IsRead {
		t.Errorf("ReadFlagChanges[0].IsRead = false, want true")
	}
}

func TestSyncFolderItemsRequest(t *testing.T) {
	tests := []struct {
		name      string
		folder    FolderID
		state     string
		max       int
		wantMax   string
		wantState bool
	}{
		{"first sync of inbox", FolderID{Distinguished: "inbox"}, "", 512, "512", false},
		{"with state", FolderID{Distinguished: "inbox"}, "H4sI+/=", 0, "1", true},
		{"folder id, clamped", FolderID{ID: "AAMkAFProcessed", ChangeKey: "AQ"}, "s", 5000, "512", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, serveFile(t, "syncfolderitems_empty.xml"))
			if _, err := f.client(Options{}).SyncFolderItems(context.Background(), testMailbox, tt.folder, tt.state, tt.max); err != nil {
				t.Fatal(err)
			}
			op := checkEnvelope(t, f.last(), "SyncFolderItems")
			var order []string
			for _, c := range op.children {
				if c.name.Space != nsMessages {
					t.Errorf("child %s in namespace %q, want messages", c.name.Local, c.name.Space)
				}
				order = append(order, c.name.Local)
			}
			want := []string{"ItemShape", "SyncFolderId", "MaxChangesReturned", "SyncScope"}
			if tt.wantState {
				want = []string{"ItemShape", "SyncFolderId", "SyncState", "MaxChangesReturned", "SyncScope"}
			}
			if !slices.Equal(order, want) {
				t.Errorf("SyncFolderItems children = %v, want %v (schema order)", order, want)
			}
			if got := strictPath(op, nsMessages, "ItemShape").child(nsTypes, "BaseShape").value(); got != "IdOnly" {
				t.Errorf("BaseShape = %q, want IdOnly", got)
			}
			if got := strictChild(op, nsMessages, "MaxChangesReturned").value(); got != tt.wantMax {
				t.Errorf("MaxChangesReturned = %s, want %s", got, tt.wantMax)
			}
			if tt.wantState && strictChild(op, nsMessages, "SyncState").value() != tt.state {
				t.Errorf("SyncState = %q, want %q", strictChild(op, nsMessages, "SyncState").value(), tt.state)
			}
			sf := strictChild(op, nsMessages, "SyncFolderId")
			if tt.folder.Distinguished != "" {
				d := strictChild(sf, nsTypes, "DistinguishedFolderId")
				if d.attr("Id") != "inbox" || strictPath(d, nsTypes, "Mailbox", "EmailAddress").value() != testMailbox {
					t.Errorf("DistinguishedFolderId = %q (mailbox %q)", d.attr("Id"), strictPath(d, nsTypes, "Mailbox", "EmailAddress").value())
				}
			} else if id := strictChild(sf, nsTypes, "FolderId").attr("Id"); id != tt.folder.ID {
				t.Errorf("FolderId Id = %q, want %q", id, tt.folder.ID)
			}
		})
	}
}

func TestSyncFolderItemsErrors(t *testing.T) {
	f := newFake(t, serveFile(t, "error_invalidsyncstate.xml"))
	_, err := f.client(Options{}).SyncFolderItems(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}, "bad", 1)
	if !errorsIs(err, ErrInvalidSyncStateData) || IsTransient(err) {
		t.Errorf("error = %v, want ErrInvalidSyncStateData, not transient", err)
	}
	f = newFake(t, serveFile(t, "error_serverbusy_message.xml"))
	_, err = f.client(Options{}).SyncFolderItems(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}, "", 1)
	// The server's 25 ms is kept in the error; Backoff clamps it to 1 s.
	var re *ResponseError
	if d, ok := Backoff(err); !errorsIs(err, ErrServerBusy) || !ok || d != time.Second || !IsTransient(err) || !errors.As(err, &re) || re.BackOff != 25*time.Millisecond {
		t.Errorf("error = %v (backoff %v), want transient ErrServerBusy with 25ms, clamped to 1s", err, d)
	}
}
