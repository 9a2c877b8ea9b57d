// Runs Microsoft's EWS Managed API port for JavaScript (ews-javascript-api)
// against the simulator: node check.js <endpoints.json> <mailbox>.
// App-only OAuth from the simulator's token endpoint, impersonation of
// <mailbox>, then FindItems, SyncFolderItems, GetItem with MimeContent,
// mark read, find or create Inbox/Processed and move there, delete, and an
// incremental resync. Prints one "ok <step>" line per step; exits non-zero
// on the first failure. The simulator's CA is trusted through
// NODE_EXTRA_CA_CERTS, set by the test.
"use strict";
const { readFileSync } = require("node:fs");
const ews = require("ews-javascript-api");

const [epFile, mailbox] = process.argv.slice(2);
const ep = JSON.parse(readFileSync(epFile, "utf8"));
const fail = (msg) => { console.error("FAIL " + msg); process.exit(1); };
const check = (cond, msg) => { if (!cond) fail(msg); };

async function main() {
  const form = new URLSearchParams({
    grant_type: "client_credentials", client_id: "22222222-2222-2222-2222-222222222222",
    client_secret: "demo-secret", scope: "https://outlook.office365.com/.default",
  });
  const tr = await fetch(ep.token_url.replace("{tenant}", "contoso.test"), { method: "POST", body: form });
  const { access_token: token } = await tr.json();
  check(token, "token " + tr.status);
  console.log("ok token");

  const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2016);
  service.Url = new ews.Uri(ep.ews);
  service.Credentials = new ews.OAuthCredentials(token);
  service.ImpersonatedUserId = new ews.ImpersonatedUserId(ews.ConnectingIdType.SmtpAddress, mailbox);
  service.HttpHeaders.Add("X-AnchorMailbox", mailbox);

  const inboxId = new ews.FolderId(ews.WellKnownFolderName.Inbox);
  const found = await service.FindItems(ews.WellKnownFolderName.Inbox, new ews.ItemView(50));
  check(found.Items.length > 0 && found.TotalCount === found.Items.length && !found.MoreAvailable,
    `find: ${found.Items.length} items of ${found.TotalCount}`);
  console.log(`ok find ${found.Items.length}`);

  const changes = await service.SyncFolderItems(inboxId, ews.PropertySet.IdOnly, null, 512, ews.SyncFolderItemsScope.NormalItems, null);
  const creates = changes.GetEnumerator().filter((c) => c.ChangeType === ews.ChangeType.Create);
  check(creates.length === found.Items.length && !changes.MoreChangesAvailable && changes.SyncState,
    `sync: ${creates.length} creates, more ${changes.MoreChangesAvailable}`);
  const syncState = changes.SyncState;
  console.log(`ok sync ${creates.length}`);

  // FindItems lists newest first; act on the oldest three.
  const ids = found.Items.map((i) => i.Id).reverse();
  const props = new ews.PropertySet(ews.BasePropertySet.FirstClassProperties, [ews.ItemSchema.MimeContent]);
  const first = await ews.EmailMessage.Bind(service, ids[0], props);
  const mime = Buffer.from(first.MimeContent.Content, "base64").toString("utf8");
  check(mime.includes("Subject:") && first.Subject && mime.includes(first.Subject), "mime: " + mime.slice(0, 80));
  check(first.InternetMessageId && mime.includes(first.InternetMessageId), "InternetMessageId " + first.InternetMessageId);
  console.log(`ok mime ${mime.length}`);

  check(first.IsRead === false, "first item already read");
  first.IsRead = true;
  await first.Update(ews.ConflictResolutionMode.AutoResolve);
  const again = await ews.EmailMessage.Bind(service, ids[0], new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.EmailMessageSchema.IsRead]));
  check(again.IsRead === true, "mark_read did not stick");
  console.log("ok mark_read");

  const view = new ews.FolderView(10);
  const filter = new ews.SearchFilter.IsEqualTo(ews.FolderSchema.DisplayName, "Processed");
  let processed = (await service.FindFolders(ews.WellKnownFolderName.Inbox, filter, view)).Folders[0];
  let how = "found";
  if (!processed) {
    const f = new ews.Folder(service);
    f.DisplayName = "Processed";
    await f.Save(ews.WellKnownFolderName.Inbox);
    processed = await ews.Folder.Bind(service, f.Id);
    how = "created";
  }
  check(processed.DisplayName === "Processed" && processed.ParentFolderId, "folder " + processed.DisplayName);
  const inbox = await ews.Folder.Bind(service, ews.WellKnownFolderName.Inbox);
  check(processed.ParentFolderId.UniqueId === inbox.Id.UniqueId, "Processed is not below Inbox");
  console.log(`ok folder Processed ${how}`);

  const second = await ews.Item.Bind(service, ids[1], ews.PropertySet.IdOnly);
  const moved = await second.Move(processed.Id);
  check(moved && moved.Id.UniqueId !== ids[1].UniqueId, "move gave no new id");
  const inProcessed = await service.FindItems(processed.Id, new ews.ItemView(10));
  check(inProcessed.TotalCount === 1, `Processed holds ${inProcessed.TotalCount}`);
  console.log("ok move Processed");

  const third = await ews.Item.Bind(service, ids[2], ews.PropertySet.IdOnly);
  await third.Delete(ews.DeleteMode.MoveToDeletedItems);
  const left = await service.FindItems(ews.WellKnownFolderName.Inbox, new ews.ItemView(50));
  check(left.TotalCount === found.Items.length - 2, `inbox holds ${left.TotalCount} after delete`);
  console.log("ok delete");

  const resync = (await service.SyncFolderItems(inboxId, ews.PropertySet.IdOnly, null, 512, ews.SyncFolderItemsScope.NormalItems, syncState)).GetEnumerator();
  const count = (type) => resync.filter((c) => c.ChangeType === type).length;
  console.log(`ok resync ${count(ews.ChangeType.Create)} created, ${count(ews.ChangeType.Delete)} deleted, ${count(ews.ChangeType.ReadFlagChange)} read`);
}

main().catch((err) => fail((err && (err.stack || err.message)) || String(err)));
