// Package graph reads Exchange Online mailboxes over Microsoft Graph v1.0
// with app-only tokens (scope https://graph.microsoft.com/.default,
// application permission Mail.ReadWrite).
//
// New mail is found with the delta query of each folder
// (/users/{mailbox}/mailFolders/{id}/messages/delta, changeType=created,
// three properties selected, 100 per page); the next link to follow is the
// checkpoint. Each message's MIME comes from /messages/{id}/$value. After
// its event is acknowledged a message is marked read, moved or deleted in
// $batch requests of up to 20. Every request asks for immutable ids, so a
// move does not change a message's id (and so its event id).
//
// The Client keeps Graph's limits: at most 4 requests in flight per
// mailbox and 20 per app; a 429 or 503 makes every request for that
// mailbox wait its Retry-After, short waits are retried in place and
// longer ones go back to the poller (source.Throttled). Links handed over
// by the server are followed only to the configured base URL, so the
// token goes nowhere else.
//
// With a Push (Options.Push), a Source waiting for mail subscribes its
// folder to change notifications; Push serves the URL Graph posts them to
// and wakes the folder whose subscription and clientState match, so the
// delta query runs at once. The notification carries nothing else that is
// used: the delta link stays the only checkpoint.
package graph
