"""Drive the simulator's EWS endpoint with exchangelib, a real third-party
EWS client: app-only OAuth 2.0 (client credentials from the simulator's
token endpoint), impersonation, list the Inbox, fetch MIME, mark read, move
to a folder, delete, and an incremental resync.

usage: exchangelib_check.py ENDPOINTS_JSON MAILBOX
Prints one "ok <step> ..." line per step; exits non-zero on the first failure.
"""
import json
import os
import sys

ep = json.load(open(sys.argv[1]))
mailbox = sys.argv[2]
os.environ["REQUESTS_CA_BUNDLE"] = ep["ca_file"]

from exchangelib import (IMPERSONATION, Account, Build, Configuration, Identity,  # noqa: E402
                         OAuth2Credentials, Version)

TENANT = "11111111-1111-1111-1111-111111111111"


class SimCredentials(OAuth2Credentials):
    """Client credentials whose token URL is the simulator's."""

    @property
    def token_url(self):
        return ep["authority"] + "/" + TENANT + "/oauth2/v2.0/token"


creds = SimCredentials(client_id="22222222-2222-2222-2222-222222222222", client_secret="demo-secret",
                       tenant_id=TENANT, identity=Identity(primary_smtp_address=mailbox))
cfg = Configuration(service_endpoint=ep["ews"], credentials=creds, auth_type="OAuth 2.0",
                    version=Version(build=Build(15, 1, 2, 3)))
acct = Account(mailbox, config=cfg, autodiscover=False, access_type=IMPERSONATION)

items = list(acct.inbox.all().order_by("datetime_received"))
print("ok list", acct.inbox.total_count, len(items))
assert len(items) == acct.inbox.total_count > 0

first = acct.inbox.get(id=items[0].id)
assert first.mime_content and b"Subject:" in first.mime_content, first.mime_content[:80]
print("ok mime", len(first.mime_content))

sync_state = None
changes = list(acct.inbox.sync_items(only_fields=["id"]))
sync_state = acct.inbox.item_sync_state
print("ok sync", len(changes))
assert len(changes) == len(items), (len(changes), len(items))

first.is_read = True
first.save(update_fields=["is_read"])
assert acct.inbox.get(id=first.id).is_read
print("ok mark_read")

processed = acct.inbox.parent / "Processed"
second = items[1]
second.move(processed)
assert processed.all().count() == 1
print("ok move", processed.name)

third = items[2]
third.delete()
print("ok delete")
assert acct.inbox.all().count() == len(items) - 2

import requests  # noqa: E402

new = b"From: a@example.net\r\nSubject: arrived after the first sync\r\n\r\nhi\r\n"
r = requests.post(ep["control"] + "/deliver", params={"mailbox": mailbox}, data=new)
r.raise_for_status()
acct.inbox.item_sync_state = sync_state
changes = list(acct.inbox.sync_items(only_fields=["id", "subject"]))
again = [c for c in changes if c[0] == "create"]
deleted = [c for c in changes if c[0] == "delete"]
read = [c for c in changes if c[0] == "read_flag_change"]
print("ok resync", len(again), "created,", len(deleted), "deleted,", len(read), "read")
assert len(again) == 1 and again[0][1].id == r.json()["item_id"], again
assert len(deleted) == 2 and len(read) == 1, changes
