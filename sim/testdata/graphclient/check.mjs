// Runs Microsoft's JavaScript Graph client (@microsoft/microsoft-graph-client)
// against the simulator: node check.mjs <endpoints.json> <mailbox>.
// Prints one "ok …" line per step; exits non-zero on the first failure.
import { readFileSync } from "node:fs";
import { Client } from "@microsoft/microsoft-graph-client";

const [epFile, mailbox] = process.argv.slice(2);
const ep = JSON.parse(readFileSync(epFile, "utf8"));
const fail = (msg) => { console.error("FAIL " + msg); process.exit(1); };

const form = new URLSearchParams({
  grant_type: "client_credentials", client_id: "22222222-2222-2222-2222-222222222222",
  client_secret: "demo-secret", scope: "https://graph.microsoft.com/.default",
});
const tr = await fetch(ep.token_url.replace("{tenant}", "contoso.test"), { method: "POST", body: form });
const { access_token: token } = await tr.json();
if (!token) fail("token " + tr.status);
console.log("ok token");

const url = new URL(ep.graph);
const client = Client.init({
  authProvider: (done) => done(null, token),
  baseUrl: url.origin, defaultVersion: "v1.0", customHosts: new Set([url.hostname]),
});
const user = `/users/${encodeURIComponent(mailbox)}`;
const prefer = 'odata.maxpagesize=2, IdType="ImmutableId"';

const inbox = await client.api(`${user}/mailFolders/inbox`).get();
if (inbox.displayName !== "Inbox") fail("inbox " + JSON.stringify(inbox));
console.log(`ok inbox ${inbox.totalItemCount}`);

async function delta(link) {
  const items = [];
  for (;;) {
    const page = await client.api(link).header("Prefer", prefer).get();
    items.push(...page.value);
    if (page["@odata.deltaLink"]) return { items, deltaLink: page["@odata.deltaLink"] };
    link = page["@odata.nextLink"];
  }
}
let { items, deltaLink } = await delta(`${user}/mailFolders/inbox/messages/delta?$select=subject,isRead`);
console.log(`ok delta ${items.length}`);
const ids = items.map((m) => m.id);

const mime = await client.api(`${user}/messages/${ids[0]}/$value`).responseType("text").get();
if (!String(mime).includes("Subject:")) fail("mime");
console.log("ok mime");

const read = await client.api(`${user}/messages/${ids[0]}`).header("Prefer", prefer).patch({ isRead: true });
if (read.isRead !== true) fail("patch");
console.log("ok mark_read");

const kids = await client.api(`${user}/mailFolders/inbox/childFolders`).get();
const dest = kids.value.find((f) => f.displayName === "Processed");
if (!dest) fail("no Inbox/Processed");
const moved = await client.api(`${user}/messages/${ids[1]}/move`).header("Prefer", prefer).post({ destinationId: dest.id });
if (moved.id !== ids[1]) fail("move kept no ImmutableId");
console.log("ok move Processed");

await client.api(`${user}/messages/${ids[2]}`).header("Prefer", prefer).delete();
console.log("ok delete");

const batch = await client.api("/$batch").post({ requests: [
  { id: "1", method: "GET", url: `${user}/messages/${ids[3]}?$select=isRead`, headers: { Prefer: 'IdType="ImmutableId"' } },
  { id: "2", method: "PATCH", url: `${user}/messages/${ids[3]}`, dependsOn: ["1"],
    headers: { "Content-Type": "application/json", Prefer: 'IdType="ImmutableId"' }, body: { isRead: true } },
] });
const statuses = batch.responses.map((r) => `${r.id}:${r.status}`).sort().join(",");
if (statuses !== "1:200,2:200") fail("batch " + statuses);
console.log("ok batch");

({ items } = await delta(deltaLink));
const removed = items.filter((m) => m["@removed"]).length;
const updated = items.filter((m) => !m["@removed"] && (m.id === ids[0] || m.id === ids[3])).length;
console.log(`ok resync ${removed} removed, ${updated} updated`);
