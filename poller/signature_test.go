package poller

import (
	"reflect"
	"testing"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/source"
)

// Every field of a resolved mailbox takes part in the reload signature,
// so a new field cannot be silently ignored on SIGHUP.
func TestSignatureCoversEveryMailboxField(t *testing.T) {
	base := config.Mailbox{Account: &config.Account{Name: "a"}, Mailbox: source.Mailbox{Address: "x@contoso.test"}}
	sig := signature(base)
	typ := reflect.TypeOf(base.Mailbox)
	for i := range typ.NumField() {
		f := typ.Field(i)
		changed := base
		v := reflect.ValueOf(&changed.Mailbox).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("changed")
		case reflect.Int, reflect.Int64:
			v.SetInt(12345)
		case reflect.Bool:
			v.SetBool(true)
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, v.Kind())
		}
		if signature(changed) == sig {
			t.Errorf("changing Mailbox.%s does not change the reload signature", f.Name)
		}
	}
	acct := *base.Account
	acct.Server = "other:993"
	if signature(config.Mailbox{Account: &acct, Mailbox: base.Mailbox}) == sig {
		t.Error("changing the account's server does not change the reload signature")
	}
}
