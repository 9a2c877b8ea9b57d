package config_test

import (
	"fmt"

	"github.com/mailpoller/mailpoller/config"
)

func ExampleParse() {
	_, err := config.Parse([]byte(`
accounts:
  - name: support
    tenant_id: 0f6b3a52-1c3d-4e5f-8a9b-0c1d2e3f4a5b
    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d
    client_secret: do-not-print-me
    mailbox: support@contoso.com
    after_read: archive
`), "config.yaml")
	fmt.Println(err)
	// Output:
	// config.yaml:8: accounts[0].after_read: "archive" is not valid; use one of: mark_read, move, delete, none
}

func ExampleConfig_Mailboxes() {
	c, err := config.Parse([]byte(`
defaults:
  poll_interval: 30s
accounts:
  - name: support
    tenant_id: contoso.onmicrosoft.com
    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d
    client_secret: do-not-print-me
    mailbox: Support@Contoso.com
    additional_users:
      - billing@contoso.com
      - {address: hr@contoso.com, folder: Applications, poll_interval: 5m}
`), "config.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range c.Mailboxes() {
		fmt.Println(m.Account.Name, m.Address, m.Folder, m.PollInterval, config.Token(m.Address))
	}
	// Output:
	// support support@contoso.com INBOX 30s support_at_contoso_com
	// support billing@contoso.com INBOX 30s billing_at_contoso_com
	// support hr@contoso.com Applications 5m0s hr_at_contoso_com
}
