package message

import (
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const mixedHeader = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"

// Parts of the corpus that more than one spec needs.
var (
	forwardedInner = "From: Alice Example <alice@example.net>\nTo: support@contoso.test\nSubject: Original question\n" +
		"Date: Mon, 16 Nov 2026 09:00:00 +0100\nMessage-ID: <c19-inner@example.net>\nContent-Type: text/plain\n\nWhat are your opening hours?\n"
	budgetInner = "From: Bob <bob@contoso.test>\nTo: finance@contoso.test\nSubject: Q3/Q4 budget\n" +
		"Date: Fri, 13 Nov 2026 16:00:00 +0100\nMessage-ID: <b1@contoso.test>\nContent-Type: text/plain\n\nNumbers attached.\n"
	dsnStatus  = "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; nobody@example.org\nAction: failed\nStatus: 5.1.1"
	dsnHeaders = "From: support@contoso.test\nTo: nobody@example.org\nSubject: Your ticket"
	ics        = "BEGIN:VCALENDAR\nMETHOD:REQUEST\nPRODID:Microsoft Exchange Server 2010\nVERSION:2.0\nBEGIN:VEVENT\n" +
		"UID:040000008200E00074C5B7101A82E008\nSUMMARY:Review\nDTSTART:20261120T090000Z\nDTEND:20261120T100000Z\n" +
		"ORGANIZER;CN=Alice Example:mailto:alice@example.net\nEND:VEVENT\nEND:VCALENDAR"
	longSubject = []string{"Überweisung der Rechnung Nr. 2026-0042 ", "für Büromaterial und Versandkosten ", "im November – bitte bis Freitag prüfen"}
)

func refs(n int) (raw string, ids []string) {
	var parts []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("thread-%03d.%d@mail.example.org", i, 1700000000+i)
		ids = append(ids, id)
		parts = append(parts, "<"+id+">")
	}
	return strings.Join(parts, "\n "), ids
}

var longRefsRaw, longRefs = refs(40)

var corpus = []corpusMail{
	{name: "01-plain-ascii",
		raw: stdHeader("c01@example.net", "Password reset request") + "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" +
			"Hello,\nplease reset my password.\n-- \nAlice\n",
		want: with(std("c01@example.net", "Password reset request"), func(m *Message) { m.Text = "Hello,\nplease reset my password.\n-- \nAlice\n" })},

	{name: "02-utf8-plain",
		raw: "From: \"Jörg Straße\" <joerg@example.de>\nTo: support@contoso.test\nSubject: Grüße aus München\n" +
			"Date: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c02@example.de>\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nDas Gerät zeigt „Fehler 42“ – bitte prüfen. 😀\n",
		want: with(std("c02@example.de", "Grüße aus München"), func(m *Message) {
			m.From = addr("Jörg Straße", "joerg@example.de")
			m.Text = "Das Gerät zeigt „Fehler 42“ – bitte prüfen. 😀\n"
		})},

	{name: "03-alternative",
		raw: "From: Shop <noreply@shop.example>\nTo: support@contoso.test\nSubject: Order 1234 shipped\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c03@shop.example>\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"alt-1\"\n\n" +
			"--alt-1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nYour order has shipped. Tracking: ZX12=\n345.\n" +
			"--alt-1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"<html><body><p>Your order has <b>shipped</b>. Tracking: ZX12345.</p></body></html>\n--alt-1--\n",
		want: with(std("c03@shop.example", "Order 1234 shipped"), func(m *Message) {
			m.From = addr("Shop", "noreply@shop.example")
			m.Text = "Your order has shipped. Tracking: ZX12345.\n"
			m.HTML = "<html><body><p>Your order has <b>shipped</b>. Tracking: ZX12345.</p></body></html>"
		})},

	{name: "04-html-only",
		raw: "From: News <news@news.example>\nTo: support@contoso.test\nSubject: Newsletter November\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c04@news.example>\nList-Unsubscribe: <mailto:unsub@news.example>\nMIME-Version: 1.0\n" +
			"Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n<p>Caf=E9 news</p>\n",
		want: with(std("c04@news.example", "Newsletter November"), func(m *Message) {
			m.From = addr("News", "news@news.example")
			m.HTML = "<p>Café news</p>\n"
			m.Auto.Bulk = true
		})},

	{name: "05-pdf-attachment",
		raw: stdHeader("c05@example.net", "Invoice 2026-118") + mixedHeader +
			"--b1\nContent-Type: text/plain; charset=utf-8\n\nPlease find the invoice attached.\n" +
			"--b1\nContent-Type: application/pdf; name=\"invoice-2026-118.pdf\"\nContent-Disposition: attachment; filename=\"invoice-2026-118.pdf\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(pdf) + "\n--b1--\n",
		want: with(std("c05@example.net", "Invoice 2026-118"), func(m *Message) {
			m.Text = "Please find the invoice attached.\n"
			m.Attachments = []Attachment{att("invoice-2026-118.pdf", "application/pdf", pdf, false, "")}
		})},

	{name: "06-three-attachments",
		raw: stdHeader("c06@example.net", "Photos and archive") + mixedHeader +
			"--b1\nContent-Type: text/plain\n\nSee attached.\n" +
			"--b1\nContent-Type: image/png\nContent-Disposition: attachment; filename=photo.png\nContent-Transfer-Encoding: base64\n\n" + b64(png) + "\n" +
			"--b1\nContent-Type: application/zip; name=logs.zip\nContent-Disposition: attachment; filename=logs.zip\nContent-Transfer-Encoding: base64\n\n" + b64(zip) + "\n" +
			"--b1\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=\"report.docx\"\n" +
			"Content-Disposition: attachment; filename=\"report.docx\"\nContent-Transfer-Encoding: base64\n\n" + b64(docx) + "\n--b1--\n",
		want: with(std("c06@example.net", "Photos and archive"), func(m *Message) {
			m.Text = "See attached.\n"
			m.Attachments = []Attachment{att("photo.png", "image/png", png, false, ""), att("logs.zip", "application/zip", zip, false, ""),
				att("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx, false, "")}
		})},

	{name: "07-related-inline-image",
		raw: stdHeader("c07@example.net", "Signature with logo") + "MIME-Version: 1.0\n" +
			"Content-Type: multipart/related; boundary=\"rel\"; type=\"multipart/alternative\"\n\n" +
			"--rel\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n" +
			"--alt\nContent-Type: text/plain; charset=utf-8\n\nRegards, Alice\n" +
			"--alt\nContent-Type: text/html; charset=utf-8\n\n<p>Regards, Alice<br><img src=\"cid:logo@example.net\"></p>\n--alt--\n\n" +
			"--rel\nContent-Type: image/png; name=logo.png\nContent-ID: <logo@example.net>\nContent-Transfer-Encoding: base64\n\n" + b64(logo) + "\n--rel--\n",
		want: with(std("c07@example.net", "Signature with logo"), func(m *Message) {
			m.Text = "Regards, Alice\n"
			m.HTML = "<p>Regards, Alice<br><img src=\"cid:logo@example.net\"></p>"
			m.Attachments = []Attachment{att("logo.png", "image/png", logo, true, "logo@example.net")}
		})},

	{name: "08-subject-utf8-b",
		raw: "From: " + word("UTF-8", nil, "Иван Петров") + " <ivan@example.ru>\nTo: support@contoso.test\nSubject: =?UTF-8?B?0J/RgNC40LLQtdGCLCDQvNC40YAh?=\n" +
			"Date: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c08@example.ru>\nContent-Type: text/plain; charset=utf-8\n\nbody\n",
		dec: map[string]string{"From": "Иван Петров <ivan@example.ru>", "Subject": "Привет, мир!"},
		want: with(std("c08@example.ru", "Привет, мир!"), func(m *Message) {
			m.From = addr("Иван Петров", "ivan@example.ru")
			m.Text = "body\n"
		})},

	{name: "09-subject-utf8-q",
		raw:  stdHeader("c09@example.fr", "=?utf-8?Q?Caf=C3=A9_=E2=82=AC_price?=") + "Content-Type: text/plain; charset=utf-8\n\nbody\n",
		dec:  map[string]string{"Subject": "Café € price"},
		want: with(std("c09@example.fr", "Café € price"), func(m *Message) { m.Text = "body\n" })},

	{name: "10-subject-iso-8859-1",
		raw: "From: =?iso-8859-1?q?Andr=E9_M=FCller?= <andre@example.de>\nTo: support@contoso.test\n" +
			"Subject: =?ISO-8859-1?Q?Andr=E9_m=F6chte_einen_Termin?=\nDate: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c10@example.de>\n" +
			"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nK=F6nnen wir uns treffen?\n",
		dec: map[string]string{"From": "André Müller <andre@example.de>", "Subject": "André möchte einen Termin"},
		want: with(std("c10@example.de", "André möchte einen Termin"), func(m *Message) {
			m.From = addr("André Müller", "andre@example.de")
			m.Text = "Können wir uns treffen?\n"
		})},

	{name: "11-subject-windows-1252",
		raw: stdHeader("c11@example.com", "=?windows-1252?Q?=93Quoted=94_=96_dash?=") +
			"Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n=93smart quotes=94 and =80 sign\n",
		dec:  map[string]string{"Subject": "“Quoted” – dash"},
		want: with(std("c11@example.com", "“Quoted” – dash"), func(m *Message) { m.Text = "“smart quotes” and € sign\n" })},

	{name: "12-iso-2022-jp",
		raw: "From: " + word("ISO-2022-JP", japanese.ISO2022JP, "山田太郎") + " <yamada@example.jp>\nTo: support@contoso.test\n" +
			"Subject: " + word("ISO-2022-JP", japanese.ISO2022JP, "お問い合わせ") + "\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c12@example.jp>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n" +
			enc(japanese.ISO2022JP, "こんにちは、納品書を送ります。\n"),
		dec: map[string]string{"From": "山田太郎 <yamada@example.jp>", "Subject": "お問い合わせ"},
		want: with(std("c12@example.jp", "お問い合わせ"), func(m *Message) {
			m.From = addr("山田太郎", "yamada@example.jp")
			m.Text = "こんにちは、納品書を送ります。\n"
		})},

	{name: "13-gb18030",
		raw: stdHeader("c13@example.cn", word("GB18030", simplifiedchinese.GB18030, "发票通知")) + "MIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=GB18030\nContent-Transfer-Encoding: base64\n\n" + b64([]byte(enc(simplifiedchinese.GB18030, "发票已开具，请查收。\n"))) + "\n",
		dec:  map[string]string{"Subject": "发票通知"},
		want: with(std("c13@example.cn", "发票通知"), func(m *Message) { m.Text = "发票已开具，请查收。\n" })},

	{name: "14-koi8-r",
		raw: "From: " + word("KOI8-R", charmap.KOI8R, "Пётр Иванов") + " <petr@example.ru>\nTo: support@contoso.test\n" +
			"Subject: " + word("KOI8-R", charmap.KOI8R, "Счёт") + "\nDate: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c14@example.ru>\n" +
			"Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n" + enc(charmap.KOI8R, "Счёт во вложении.\n"),
		dec: map[string]string{"From": "Пётр Иванов <petr@example.ru>", "Subject": "Счёт"},
		want: with(std("c14@example.ru", "Счёт"), func(m *Message) {
			m.From = addr("Пётр Иванов", "petr@example.ru")
			m.Text = "Счёт во вложении.\n"
		})},

	{name: "15-shift-jis-subject",
		raw: stdHeader("c15@example.jp", word("Shift_JIS", japanese.ShiftJIS, "請求書")) +
			"Content-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: 8bit\n\n" + enc(japanese.ShiftJIS, "請求書を送付いたします。\n"),
		dec:  map[string]string{"Subject": "請求書"},
		want: with(std("c15@example.jp", "請求書"), func(m *Message) { m.Text = "請求書を送付いたします。\n" })},

	{name: "16-windows-1251-body",
		raw: stdHeader("c16@example.ru", "Russian body") + "Content-Type: text/plain; charset=windows-1251\nContent-Transfer-Encoding: 8bit\n\n" +
			enc(charmap.Windows1251, "Добрый день! Оплата получена.\n"),
		want: with(std("c16@example.ru", "Russian body"), func(m *Message) { m.Text = "Добрый день! Оплата получена.\n" })},

	{name: "17-iso-8859-15-body",
		raw: stdHeader("c17@example.fr", "Euro sign") + "Content-Type: text/plain; charset=iso-8859-15\nContent-Transfer-Encoding: quoted-printable\n\n" +
			qp(enc(charmap.ISO8859_15, "Prix: 10 € (Œuvre complète)\n")),
		want: with(std("c17@example.fr", "Euro sign"), func(m *Message) { m.Text = "Prix: 10 € (Œuvre complète)\n" })},

	{name: "18-rfc2231-filename",
		raw: stdHeader("c18@example.de", "Contract") + mixedHeader +
			"--b1\nContent-Type: text/plain\n\nsigned contract\n" +
			"--b1\nContent-Type: application/pdf\nContent-Disposition: attachment;\n filename*0*=utf-8''Vertrag%20f%C3%BCr%20;\n filename*1*=M%C3%BCller%20;\n filename*2=\"(final).pdf\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(contract) + "\n--b1--\n",
		want: with(std("c18@example.de", "Contract"), func(m *Message) {
			m.Text = "signed contract\n"
			m.Attachments = []Attachment{att("Vertrag für Müller (final).pdf", "application/pdf", contract, false, "")}
		})},

	{name: "19-forwarded-rfc822",
		raw: "From: Bob <bob@contoso.test>\nTo: support@contoso.test\nSubject: Fwd: Original question\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c19@contoso.test>\n" + mixedHeader + "--b1\nContent-Type: text/plain\n\nForwarding this.\n" +
			"--b1\nContent-Type: message/rfc822\n\n" + forwardedInner + "\n--b1--\n",
		want: with(std("c19@contoso.test", "Fwd: Original question"), func(m *Message) {
			m.From = addr("Bob", "bob@contoso.test")
			m.Text = "Forwarding this.\n"
			m.Attachments = []Attachment{att("Original question.eml", "message/rfc822", crlf(forwardedInner), false, "")}
		})},

	{name: "20-reply-threading",
		raw: stdHeader("c20@example.net", "Re: Ticket #4411") + "In-Reply-To: <t4411-2@contoso.test>\nReferences: <t4411-1@contoso.test>\n <t4411-2@contoso.test>\n" +
			"Content-Type: text/plain\n\nThanks, that solved it.\n\n> Please try again.\n",
		want: with(std("c20@example.net", "Re: Ticket #4411"), func(m *Message) {
			m.InReplyTo = []string{"t4411-2@contoso.test"}
			m.References = []string{"t4411-1@contoso.test", "t4411-2@contoso.test"}
			m.Text = "Thanks, that solved it.\n\n> Please try again.\n"
		})},

	{name: "21-outlook-exchange",
		raw: "From: Carol Jones <carol@contoso.test>\nTo: Support <support@contoso.test>\nSubject: Meeting notes\nThread-Topic: Meeting notes\n" +
			"Thread-Index: AdlJx5vQk3R1dGVzdA==\nDate: Mon, 16 Nov 2026 09:00:00 +0000\n" +
			"Message-ID: <AM0PR01MB5555A1B2C3D4E5F6A7B8C9D0E1F2@AM0PR01MB5555.eurprd01.prod.exchangelabs.com>\n" +
			"Accept-Language: de-DE, en-US\nContent-Language: en-US\nX-MS-Has-Attach: yes\nX-MS-TNEF-Correlator:\n" +
			"X-MS-Exchange-Organization-AuthAs: Internal\nX-MS-Exchange-Organization-AuthSource: AM0PR01MB5555.eurprd01.prod.exchangelabs.com\n" +
			"X-MS-Exchange-Organization-Network-Message-Id: 3f2b8c1e-0d4a-4c55-9a7e-2b1f6d0e9c11\n" +
			"X-MS-Exchange-CrossTenant-OriginalArrivalTime: 16 Nov 2026 09:00:01.2345 (UTC)\nX-MS-Exchange-Transport-CrossTenantHeadersStamped: AM0PR01MB5556\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"_004_AM0PR01MB5555_\"\n\n" +
			"--_004_AM0PR01MB5555_\nContent-Type: multipart/alternative;\n\tboundary=\"_000_AM0PR01MB5555_\"\n\n" +
			"--_000_AM0PR01MB5555_\nContent-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: quoted-printable\n\nNotes attached.=0D\n\n" +
			"--_000_AM0PR01MB5555_\nContent-Type: text/html; charset=\"us-ascii\"\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"<html><head>\n<meta http-equiv=3D\"Content-Type\" content=3D\"text/html; charset=3Dus-ascii\">\n</head><body><div>Notes attached.</div></body></html>\n\n" +
			"--_000_AM0PR01MB5555_--\n\n--_004_AM0PR01MB5555_\nContent-Type: application/vnd.ms-excel; name=\"notes.xls\"\nContent-Description: notes.xls\n" +
			"Content-Disposition: attachment; filename=\"notes.xls\"; size=1024;\n\tcreation-date=\"Mon, 16 Nov 2026 08:59:00 GMT\";\n\tmodification-date=\"Mon, 16 Nov 2026 08:59:00 GMT\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(xls) + "\n\n--_004_AM0PR01MB5555_--\n",
		want: with(std("AM0PR01MB5555A1B2C3D4E5F6A7B8C9D0E1F2@AM0PR01MB5555.eurprd01.prod.exchangelabs.com", "Meeting notes"), func(m *Message) {
			m.From = addr("Carol Jones", "carol@contoso.test")
			m.To = addr("Support", "support@contoso.test")
			m.Date = date("2026-11-16T09:00:00Z")
			m.Text = "Notes attached.\n"
			m.HTML = "<html><head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=us-ascii\">\n</head><body><div>Notes attached.</div></body></html>\n"
			m.Attachments = []Attachment{att("notes.xls", "application/vnd.ms-excel", xls, false, "")}
		})},

	{name: "22-dsn-bounce",
		raw: "Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nTo: support@contoso.test\n" +
			"Subject: Undelivered Mail Returned to Sender\nDate: Mon, 16 Nov 2026 11:00:00 +0000\nMessage-ID: <c22@mx.example.com>\n" +
			"Auto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"rep\"\n\n" +
			"--rep\nContent-Type: text/plain\n\nDelivery to nobody@example.org failed permanently.\n" +
			"--rep\nContent-Type: message/delivery-status\n\n" + dsnStatus + "\n" +
			"--rep\nContent-Type: text/rfc822-headers\n\n" + dsnHeaders + "\n--rep--\n",
		want: with(std("c22@mx.example.com", "Undelivered Mail Returned to Sender"), func(m *Message) {
			m.From = addr("Mail Delivery System", "MAILER-DAEMON@mx.example.com")
			m.Date = date("2026-11-16T11:00:00Z")
			m.Text = "Delivery to nobody@example.org failed permanently.\n"
			m.Attachments = []Attachment{att("", "message/delivery-status", crlf(dsnStatus), false, ""), att("", "text/rfc822-headers", crlf(dsnHeaders), false, "")}
			m.Auto = Auto{AutoReply: true, Bounce: true}
		})},

	{name: "23-out-of-office",
		raw: "From: Alice Example <alice@example.net>\nTo: Support <support@contoso.test>\nSubject: Automatic reply: Your ticket #4411\n" +
			"Thread-Topic: Your ticket #4411\nThread-Index: AQHZx0pQ5b7kZ3V0bWVzc2FnZQ==\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c23@example.net>\nIn-Reply-To: <t4411-1@contoso.test>\nReferences: <t4411-1@contoso.test>\n" +
			"Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: alice@example.net\n" +
			"X-MS-Has-Attach:\nX-MS-TNEF-Correlator:\nContent-Language: en-US\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/alternative; boundary=\"_000_OOF_\"\n\n" +
			"--_000_OOF_\nContent-Type: text/plain; charset=\"us-ascii\"\n\nI am out of the office until 30 November.\n\n" +
			"--_000_OOF_\nContent-Type: text/html; charset=\"us-ascii\"\n\n<html><body><p>I am out of the office until 30 November.</p></body></html>\n\n--_000_OOF_--\n",
		want: with(std("c23@example.net", "Automatic reply: Your ticket #4411"), func(m *Message) {
			m.To = addr("Support", "support@contoso.test")
			m.InReplyTo = []string{"t4411-1@contoso.test"}
			m.References = []string{"t4411-1@contoso.test"}
			m.Text = "I am out of the office until 30 November.\n"
			m.HTML = "<html><body><p>I am out of the office until 30 November.</p></body></html>\n"
			m.Auto.AutoReply = true
		})},

	{name: "24-mailing-list",
		raw: "From: Dev List <dev@lists.example.org>\nTo: dev@lists.example.org\nSubject: [dev] Release 2.0\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c24@lists.example.org>\nList-Id: Developers <dev.lists.example.org>\nList-Post: <mailto:dev@lists.example.org>\n" +
			"Precedence: list\nSender: dev-bounces@lists.example.org\nContent-Type: text/plain\n\nRelease 2.0 is out.\n",
		want: with(std("c24@lists.example.org", "[dev] Release 2.0"), func(m *Message) {
			m.From = addr("Dev List", "dev@lists.example.org")
			m.To = addr("", "dev@lists.example.org")
			m.Sender = &Address{Address: "dev-bounces@lists.example.org"}
			m.Text = "Release 2.0 is out.\n"
			m.Auto.Bulk = true
		})},

	{name: "25-bulk-newsletter",
		raw: "From: Deals <deals@deals.example>\nTo: support@contoso.test\nSubject: Weekly deals\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c25@deals.example>\nPrecedence: bulk\nList-Unsubscribe: <https://deals.example/u?x=1>, <mailto:u@deals.example>\n" +
			"List-Unsubscribe-Post: List-Unsubscribe=One-Click\nContent-Type: text/plain\n\n50% off.\n",
		want: with(std("c25@deals.example", "Weekly deals"), func(m *Message) {
			m.From = addr("Deals", "deals@deals.example")
			m.Text = "50% off.\n"
			m.Auto.Bulk = true
		})},

	{name: "26-signed",
		raw: stdHeader("c26@example.net", "Signed statement") + "MIME-Version: 1.0\n" +
			"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=sig\n\n" +
			"This is a cryptographically signed message in MIME format.\n\n" +
			"--sig\nContent-Type: text/plain; charset=us-ascii\n\nI confirm the order.\n" +
			"--sig\nContent-Type: application/pkcs7-signature; name=smime.p7s\nContent-Disposition: attachment; filename=smime.p7s\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(p7s) + "\n--sig--\n",
		want: with(std("c26@example.net", "Signed statement"), func(m *Message) {
			m.Text = "I confirm the order.\n"
			m.Attachments = []Attachment{att("smime.p7s", "application/pkcs7-signature", p7s, false, "")}
		})},

	{name: "27-calendar-invite",
		raw: stdHeader("c27@example.net", "Invitation: Review") + mixedHeader +
			"--b1\nContent-Type: multipart/alternative; boundary=cal\n\n" +
			"--cal\nContent-Type: text/plain; charset=utf-8\n\nReview on Friday 10:00.\n" +
			"--cal\nContent-Type: text/html; charset=utf-8\n\n<p>Review on Friday 10:00.</p>\n" +
			"--cal\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\n\n" + ics + "\n--cal--\n\n" +
			"--b1\nContent-Type: application/ics; name=\"invite.ics\"\nContent-Disposition: attachment; filename=\"invite.ics\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(crlf(ics)) + "\n--b1--\n",
		want: with(std("c27@example.net", "Invitation: Review"), func(m *Message) {
			m.Text = "Review on Friday 10:00.\n"
			m.HTML = "<p>Review on Friday 10:00.</p>"
			m.Attachments = []Attachment{att("", "text/calendar", crlf(ics), false, ""), att("invite.ics", "application/ics", crlf(ics), false, "")}
		})},

	{name: "28-missing-closing-boundary",
		raw: stdHeader("c28@example.net", "Truncated multipart") + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=cut\n\n" +
			"--cut\nContent-Type: text/plain\n\nfirst part\n" +
			"--cut\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nQUJDREVGR0hJSktMTU5P\n",
		want: with(std("c28@example.net", "Truncated multipart"), func(m *Message) {
			m.Text = "first part\n"
			m.Attachments = []Attachment{att("", "application/octet-stream", []byte("ABCDEFGHIJKLMNO"), false, "")}
			m.Problems = problems(ProblemTruncatedMIME, "2")
		})},

	{name: "29-bad-base64",
		raw: stdHeader("c29@example.net", "Broken attachment") + mixedHeader + "--b1\nContent-Type: text/plain\n\ntext\n" +
			"--b1\nContent-Type: application/octet-stream; name=broken.bin\nContent-Transfer-Encoding: base64\n\nQUJD!!!not*base64$$$\n--b1--\n",
		want: with(std("c29@example.net", "Broken attachment"), func(m *Message) {
			m.Text = "text\n"
			// RFC 2045 §6.8: characters outside the base64 alphabet are
			// ignored, so the reader decodes "QUJDnotbase64": "ABC", six
			// bytes from "notbase6", and a lone "4" that completes nothing.
			junk, _ := base64.RawStdEncoding.DecodeString("QUJDnotbase6")
			m.Attachments = []Attachment{att("broken.bin", "application/octet-stream", junk, false, "")}
			m.Problems = problems(ProblemBadEncoding, "2")
		})},

	{name: "30-unknown-charset",
		raw:  stdHeader("c30@example.net", "Strange charset") + "Content-Type: text/plain; charset=x-unknown-42\n\nplain words\n",
		want: with(std("c30@example.net", "Strange charset"), func(m *Message) { m.Text = "plain words\n"; m.Problems = problems(ProblemBadCharset, "1") })},

	{name: "31-broken-date",
		raw: "From: Alice Example <alice@example.net>\nTo: support@contoso.test\nSubject: Bad date\nDate: yesterday at noon\n" +
			"Message-ID: <c31@example.net>\nContent-Type: text/plain\n\nbody\n",
		want: with(std("c31@example.net", "Bad date"), func(m *Message) { m.Date = nil; m.Text = "body\n"; m.Problems = problems(ProblemBadDate, "") })},

	{name: "32-broken-address-list",
		raw: "From: Alice <alice@example.net>\nTo: support@contoso.test, <<broken@@, \"Bob\" <bob@example.org>\nSubject: Broken To header\n" +
			"Date: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c32@example.net>\nContent-Type: text/plain\n\nbody\n",
		want: with(std("c32@example.net", "Broken To header"), func(m *Message) {
			m.From = addr("Alice", "alice@example.net")
			m.To = []Address{{Address: "support@contoso.test"}, {Name: "Bob", Address: "bob@example.org"}}
			m.Text = "body\n"
			m.Problems = problems(ProblemBadAddress, "")
		})},

	{name: "33-no-message-id",
		raw: "From: Alice Example <alice@example.net>\nTo: support@contoso.test\nSubject: No Message-ID\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Content-Type: text/plain\n\nbody without id\n",
		want: with(std("", "No Message-ID"), func(m *Message) { m.Text = "body without id\n" })},

	{name: "34-header-only",
		raw:  stdHeader("c34@example.net", "Header only"),
		want: with(std("c34@example.net", "Header only"), func(m *Message) { m.Problems = problems(ProblemNoBody, "") })},

	{name: "35-raw-8bit-header",
		raw: "From: Ren\xe9 <rene@example.fr>\nTo: support@contoso.test\nSubject: Caf\xe9 au lait\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c35@example.fr>\nContent-Type: text/plain; charset=iso-8859-1\n\nTr\xe8s bien\n",
		dec: map[string]string{"From": "René <rene@example.fr>", "Subject": "Café au lait"},
		want: with(std("c35@example.fr", "Café au lait"), func(m *Message) {
			m.From = addr("René", "rene@example.fr")
			m.Text = "Très bien\n"
			m.Problems = problems(ProblemBadCharset, "", ProblemBadCharset, "")
		})},

	{name: "36-not-a-message",
		raw:  "This is just a text file someone saved as .eml\nwith no headers at all.\n",
		want: Message{Text: "This is just a text file someone saved as .eml\nwith no headers at all.\n", Problems: problems(ProblemNotMIME, "")}},

	{name: "37-lf-only", lf: true,
		raw:  stdHeader("c37@example.net", "LF only line endings") + "Content-Type: text/plain\n\nline one\nline two\n",
		want: with(std("c37@example.net", "LF only line endings"), func(m *Message) { m.Text = "line one\nline two\n" })},

	{name: "38-duplicate-headers",
		raw: "Received: from mx2.contoso.test by mbx.contoso.test; Mon, 16 Nov 2026 10:00:02 +0100\n" +
			"Received: from mx1.example.net by mx2.contoso.test; Mon, 16 Nov 2026 10:00:01 +0100\n" +
			stdHeader("c38@example.net", "First subject") + "Subject: Second subject\nTo: second@contoso.test\nContent-Type: text/plain\n\nbody\n",
		want: with(std("c38@example.net", "First subject"), func(m *Message) { m.Text = "body\n" })},

	{name: "39-long-folded-header",
		raw: "From: Alice Example <alice@example.net>\nTo: Support <support@contoso.test>,\n Billing <billing@contoso.test>,\n\t\"Doe, Jane\" <jane@contoso.test>\n" +
			"Subject: " + word("UTF-8", nil, longSubject[0]) + "\n " + word("UTF-8", nil, longSubject[1]) + "\n " + word("UTF-8", nil, longSubject[2]) + "\n" +
			"Date: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c39@example.net>\nReferences: " + longRefsRaw + "\n" +
			"Content-Type: text/plain\n\nbody\n",
		dec: map[string]string{"Subject": strings.Join(longSubject, "")},
		want: with(std("c39@example.net", strings.Join(longSubject, "")), func(m *Message) {
			m.To = []Address{{"Support", "support@contoso.test"}, {"Billing", "billing@contoso.test"}, {"Doe, Jane", "jane@contoso.test"}}
			m.References = longRefs
			m.Text = "body\n"
		})},

	{name: "40-cc-replyto-sender",
		raw: "From: Alice <alice@example.net>\nSender: Assistant <assistant@example.net>\nReply-To: Team <team@example.net>\n" +
			"To: support@contoso.test\nCc: \"Doe, Jane\" <jane@example.net>, bob@example.org\nSubject: Addresses\n" +
			"Date: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c40@example.net>\nContent-Type: text/plain\n\nbody\n",
		want: with(std("c40@example.net", "Addresses"), func(m *Message) {
			m.From = addr("Alice", "alice@example.net")
			m.Sender = &Address{"Assistant", "assistant@example.net"}
			m.ReplyTo = addr("Team", "team@example.net")
			m.Cc = []Address{{"Doe, Jane", "jane@example.net"}, {"", "bob@example.org"}}
			m.Text = "body\n"
		})},

	{name: "41-inline-text-attachment",
		raw: stdHeader("c41@example.net", "Log inline") + mixedHeader + "--b1\nContent-Type: text/plain\n\nsee log\n" +
			"--b1\nContent-Type: text/plain; name=server.log\nContent-Disposition: inline; filename=server.log\n\nERROR 1\nERROR 2\n--b1--\n",
		want: with(std("c41@example.net", "Log inline"), func(m *Message) {
			m.Text = "see log\n"
			m.Attachments = []Attachment{att("server.log", "text/plain", crlf("ERROR 1\nERROR 2"), true, "")}
		})},

	{name: "42-nested-multipart",
		raw: stdHeader("c42@example.net", "Nested") + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=l1\n\n" +
			"--l1\nContent-Type: multipart/mixed; boundary=l2\n\n--l2\nContent-Type: multipart/alternative; boundary=l3\n\n" +
			"--l3\nContent-Type: text/plain\n\ndeep text\n--l3\nContent-Type: text/html\n\n<p>deep html</p>\n--l3--\n--l2--\n--l1--\n",
		want: with(std("c42@example.net", "Nested"), func(m *Message) { m.Text = "deep text\n"; m.HTML = "<p>deep html</p>" })},

	{name: "43-quoted-printable-soft-breaks",
		raw: stdHeader("c43@example.net", "QP") + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"This line is soft=\n-broken and has =C3=A9 accents, an =3D sign=20\nand a trailing space.\n",
		want: with(std("c43@example.net", "QP"), func(m *Message) {
			m.Text = "This line is soft-broken and has é accents, an = sign \nand a trailing space.\n"
		})},

	{name: "44-x-autoreply",
		raw:  stdHeader("c44@example.net", "Re: hello") + "X-Autoreply: yes\nContent-Type: text/plain\n\nauto\n",
		want: with(std("c44@example.net", "Re: hello"), func(m *Message) { m.Text = "auto\n"; m.Auto.AutoReply = true })},

	{name: "45-docx-octet-stream",
		raw: stdHeader("c45@example.net", "Angebot") + mixedHeader + "--b1\nContent-Type: text/plain; charset=utf-8\n\nAnbei das Angebot.\n" +
			"--b1\nContent-Type: application/octet-stream; name=\"Angebot 2026.docx\"\nContent-Disposition: attachment; filename=\"Angebot 2026.docx\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(offer) + "\n--b1--\n",
		want: with(std("c45@example.net", "Angebot"), func(m *Message) {
			m.Text = "Anbei das Angebot.\n"
			m.Attachments = []Attachment{att("Angebot 2026.docx", "application/octet-stream", offer, false, "")}
		})},

	{name: "46-winmail-tnef",
		raw: "From: Carol Jones <carol@contoso.test>\nTo: support@contoso.test\nSubject: Project plan\nThread-Topic: Project plan\n" +
			"Thread-Index: AdlKx9sAbCdEfGhIjKlMnOpQrStUvW==\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <AM0PR01MB7777@AM0PR01MB7777.eurprd01.prod.exchangelabs.com>\nX-MS-Has-Attach: yes\n" +
			"X-MS-TNEF-Correlator: <AM0PR01MB7777@AM0PR01MB7777.eurprd01.prod.exchangelabs.com>\n" +
			"X-MS-Exchange-Organization-SCL: -1\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"_002_tnef_\"\n\n" +
			"--_002_tnef_\nContent-Type: text/plain; charset=\"us-ascii\"\n\nPlease see the attached plan.\n" +
			"--_002_tnef_\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(tnef) + "\n--_002_tnef_--\n",
		want: with(std("AM0PR01MB7777@AM0PR01MB7777.eurprd01.prod.exchangelabs.com", "Project plan"), func(m *Message) {
			m.From = addr("Carol Jones", "carol@contoso.test")
			m.Text = "Please see the attached plan.\n"
			m.Attachments = []Attachment{att("winmail.dat", "application/ms-tnef", tnef, false, "")}
		})},

	{name: "47-iso-2022-jp-base64-body",
		raw: stdHeader("c47@example.jp", word("ISO-2022-JP", japanese.ISO2022JP, "見積書")) + "MIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=\"ISO-2022-JP\"\nContent-Transfer-Encoding: base64\n\n" +
			b64([]byte(enc(japanese.ISO2022JP, "お世話になっております。\r\n見積書を添付します。\r\n"))) + "\n",
		dec:  map[string]string{"Subject": "見積書"},
		want: with(std("c47@example.jp", "見積書"), func(m *Message) { m.Text = "お世話になっております。\n見積書を添付します。\n" })},

	{name: "48-gb18030-qp-body",
		raw: "From: " + word("GB18030", simplifiedchinese.GB18030, "王小明") + " <wang@example.cn>\nTo: support@contoso.test\n" +
			"Subject: " + word("GB18030", simplifiedchinese.GB18030, "合同") + "\nDate: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c48@example.cn>\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=gb18030\nContent-Transfer-Encoding: quoted-printable\n\n" +
			qp(enc(simplifiedchinese.GB18030, "您好，附件是合同。\n谢谢！\n")),
		dec: map[string]string{"From": "王小明 <wang@example.cn>", "Subject": "合同"},
		want: with(std("c48@example.cn", "合同"), func(m *Message) {
			m.From = addr("王小明", "wang@example.cn")
			m.Text = "您好，附件是合同。\n谢谢！\n"
		})},

	{name: "49-windows-1251-base64",
		raw: stdHeader("c49@example.ru", word("windows-1251", charmap.Windows1251, "Счёт-фактура")) + "MIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=\"windows-1251\"\nContent-Transfer-Encoding: base64\n\n" +
			b64([]byte(enc(charmap.Windows1251, "Здравствуйте!\r\nСчёт-фактура во вложении.\r\n"))) + "\n",
		dec: map[string]string{"Subject": "Счёт-фактура"},
		want: with(std("c49@example.ru", "Счёт-фактура"), func(m *Message) {
			m.Text = "Здравствуйте!\nСчёт-фактура во вложении.\n"
		})},

	{name: "50-rfc2231-latin1-filename",
		raw: stdHeader("c50@example.de", "Brief") + mixedHeader + "--b1\nContent-Type: text/plain\n\nletter attached\n" +
			"--b1\nContent-Type: application/pdf;\n name*=iso-8859-1'de'Gr%FC%DFe%20aus%20K%F6ln.pdf\n" +
			"Content-Disposition: attachment;\n filename*0*=iso-8859-1'de'Gr%FC%DFe%20;\n filename*1=\"aus \";\n filename*2*=K%F6ln.pdf\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(letter) + "\n--b1--\n",
		want: with(std("c50@example.de", "Brief"), func(m *Message) {
			m.Text = "letter attached\n"
			m.Attachments = []Attachment{att("Grüße aus Köln.pdf", "application/pdf", letter, false, "")}
		})},

	{name: "51-encoded-word-filename",
		raw: stdHeader("c51@example.de", "Anschreiben") + mixedHeader + "--b1\nContent-Type: text/plain\n\nsiehe Anhang\n" +
			"--b1\nContent-Type: application/pdf; name=\"" + word("utf-8", nil, "Anschreiben für Frau Müller.pdf") + "\"\n" +
			"Content-Description: " + word("utf-8", nil, "Anschreiben für Frau Müller.pdf") + "\n" +
			"Content-Disposition: attachment; filename=\"" + word("utf-8", nil, "Anschreiben für Frau Müller.pdf") + "\"; size=900\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(scan) + "\n--b1--\n",
		want: with(std("c51@example.de", "Anschreiben"), func(m *Message) {
			m.Text = "siehe Anhang\n"
			m.Attachments = []Attachment{att("Anschreiben für Frau Müller.pdf", "application/pdf", scan, false, "")}
		})},

	{name: "52-unquoted-filename",
		raw: "From: scanner@contoso.test\nTo: support@contoso.test\nSubject: Scan\nDate: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <c52@contoso.test>\n" +
			mixedHeader + "--b1\nContent-Type: text/plain\n\nScanned document.\n" +
			"--b1\nContent-Type: application/pdf; name=Scan 2026-11-16 Rechnung.pdf\nContent-Disposition: attachment; filename=Scan 2026-11-16 Rechnung.pdf\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64(scan) + "\n--b1--\n",
		want: with(std("c52@contoso.test", "Scan"), func(m *Message) {
			m.From = addr("", "scanner@contoso.test")
			m.Text = "Scanned document.\n"
			m.Attachments = []Attachment{att("Scan 2026-11-16 Rechnung.pdf", "application/pdf", scan, false, "")}
			m.Problems = problems(ProblemBadHeader, "2", ProblemBadHeader, "2")
		})},

	{name: "53-apple-split-bodies",
		raw: stdHeader("c53@example.net", "Photo") + mixedHeader +
			"--b1\nContent-Type: multipart/alternative; boundary=a2\n\n" +
			"--a2\nContent-Type: text/plain; charset=us-ascii\n\nHello,\n" +
			"--a2\nContent-Type: multipart/mixed; boundary=m3\n\n" +
			"--m3\nContent-Type: text/html; charset=us-ascii\n\n<html><body>Hello,</body></html>\n" +
			"--m3\nContent-Type: image/png; name=photo.png\nContent-Disposition: inline; filename=photo.png\nContent-Transfer-Encoding: base64\n\n" + b64(logo) + "\n" +
			"--m3\nContent-Type: text/html; charset=us-ascii\n\n<html><body>Regards</body></html>\n--m3--\n--a2--\n--b1--\n",
		want: with(std("c53@example.net", "Photo"), func(m *Message) {
			m.Text = "Hello,\n"
			m.HTML = "<html><body>Hello,</body></html>\n<html><body>Regards</body></html>"
			m.Attachments = []Attachment{att("photo.png", "image/png", logo, true, "")}
		})},

	{name: "54-text-attachment-charset",
		raw: stdHeader("c54@example.de", "Preisliste") + mixedHeader + "--b1\nContent-Type: text/plain; charset=utf-8\n\nPreisliste anbei.\n" +
			"--b1\nContent-Type: text/csv; charset=windows-1252; name=preise.csv\nContent-Disposition: attachment; filename=preise.csv\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64([]byte(csvFile)) + "\n--b1--\n",
		want: with(std("c54@example.de", "Preisliste"), func(m *Message) {
			m.Text = "Preisliste anbei.\n"
			m.Attachments = []Attachment{att("preise.csv", "text/csv", []byte(csvFile), false, "")}
		})},

	{name: "55-rfc822-attachment-names",
		raw: "From: Bob <bob@contoso.test>\nTo: support@contoso.test\nSubject: Two forwarded mails\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c55@contoso.test>\n" + mixedHeader + "--b1\nContent-Type: text/plain\n\nBoth attached.\n" +
			"--b1\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n" + budgetInner + "\n" +
			"--b1\nContent-Type: message/rfc822; name=\"original.eml\"\nContent-Disposition: attachment; filename=\"original.eml\"\n\n" + forwardedInner + "\n--b1--\n",
		want: with(std("c55@contoso.test", "Two forwarded mails"), func(m *Message) {
			m.From = addr("Bob", "bob@contoso.test")
			m.Text = "Both attached.\n"
			m.Attachments = []Attachment{att("Q3_Q4 budget.eml", "message/rfc822", crlf(budgetInner), false, ""),
				att("original.eml", "message/rfc822", crlf(forwardedInner), false, "")}
		})},

	{name: "56-outlook-semicolon-recipients",
		// Typed into a client that keeps "Last, First" unquoted and ";"
		// between recipients; the Cc name is an encoded word inside quotes.
		raw: "From: \"Schmidt, Peter\" <peter.schmidt@example.de>\nTo: Müller, Hans <hans.mueller@example.de>; Lena Koch <lena.koch@example.de>\n" +
			"Cc: \"=?utf-8?Q?J=C3=BCrgen_Wei=C3=9F?=\" <juergen@example.de>\nSubject: Termin Dienstag\nDate: Tue, 17 Nov 2026 08:15:00 +0100\n" +
			"Message-ID: <c56@example.de>\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nPasst 10 Uhr?\n",
		dec: map[string]string{"Cc": "\"Jürgen Weiß\" <juergen@example.de>"},
		want: Message{MessageID: "c56@example.de", Subject: "Termin Dienstag", Date: date("2026-11-17T08:15:00+01:00"),
			From: addr("Schmidt, Peter", "peter.schmidt@example.de"),
			To:   []Address{{"Müller, Hans", "hans.mueller@example.de"}, {"Lena Koch", "lena.koch@example.de"}},
			Cc:   addr("Jürgen Weiß", "juergen@example.de"), Text: "Passt 10 Uhr?\n", Problems: problems(ProblemBadAddress, "")}},

	{name: "57-split-encoded-words",
		// A shop system that cuts the UTF-8 subject into encoded words at
		// byte boundaries (inside "ä") and leaves out the base64 padding.
		raw: "From: =?UTF-8?Q?M=C3=B6belhaus_Nord?= <bestellung@moebel.example>\nTo: alice@example.net\n" +
			"Subject: =?UTF-8?B?QmVzdGVsbGJlc3TD?=\n =?UTF-8?B?pHRpZ3VuZyDigJMgQXVmdHJhZyA0NzEx?=\nDate: Tue, 17 Nov 2026 12:00:00 +0100\n" +
			"Message-ID: <c57@moebel.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n" +
			"VmllbGVuIERhbmsgZsO8ciBJaHJlIEJlc3RlbGx1bmch\n",
		dec: map[string]string{"From": "Möbelhaus Nord <bestellung@moebel.example>", "Subject": "Bestellbestätigung – Auftrag 4711"},
		want: Message{MessageID: "c57@moebel.example", Subject: "Bestellbestätigung – Auftrag 4711", Date: date("2026-11-17T12:00:00+01:00"),
			From: addr("Möbelhaus Nord", "bestellung@moebel.example"), To: addr("", "alice@example.net"),
			Text: "Vielen Dank für Ihre Bestellung!\n"}},

	{name: "58-date-zone-abbreviation",
		// An old mailer: zone abbreviation instead of an offset, base64
		// without padding.
		raw: "From: Alice Example <alice@example.net>\nTo: support@contoso.test\nSubject: Old mailer\nDate: Fri, 16 Oct 2026 09:30:00 CEST\n" +
			"Message-ID: <c58@example.net>\nX-Mailer: Lotus Notes Release 8.5.3\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
			"Content-Transfer-Encoding: base64\n\nR3LDvMOfZQ\n",
		want: with(std("c58@example.net", "Old mailer"), func(m *Message) {
			m.Date = date("2026-10-16T09:30:00+02:00")
			m.Text = "Grüße\n"
		})},

	{name: "59-undisclosed-junk-base64",
		// Sent to a group with no members, through a gateway that put a
		// stray "%" into the base64 body: RFC 2045 says skip it.
		raw: "From: Alice Example <alice@example.net>\nTo: undisclosed-recipients:;\nBcc: \nSubject: Notice\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n" +
			"Message-ID: <c59@example.net>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n" +
			"TWFp%bnRlbmFuY2UgdG9uaWdodC4K\n",
		want: with(std("c59@example.net", "Notice"), func(m *Message) {
			m.To = nil
			m.Text = "Maintenance tonight.\n"
			m.Problems = problems(ProblemBadEncoding, "1")
		})},
}
