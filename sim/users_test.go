package sim

import "testing"

func TestDirectoryUser(t *testing.T) {
	d, err := newDirectory(&Seed{Users: []User{{Login: "svc@contoso.test", Domain: "CONTOSO", Password: "pw", Mailboxes: []string{"support@contoso.test"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"svc@contoso.test", "SVC@Contoso.Test", `CONTOSO\svc`, `contoso\svc@contoso.test`, "svc"} {
		if d.user(name) == nil {
			t.Errorf("user(%q) = nil", name)
		}
	}
	for _, name := range []string{"other@contoso.test", `FABRIKAM\svc`, ""} {
		if d.user(name) != nil {
			t.Errorf("user(%q) found a user", name)
		}
	}
	u := d.user("svc")
	if !u.Opens("svc@contoso.test") || !u.Opens("Support@contoso.test") || u.Opens("billing@contoso.test") {
		t.Errorf("Opens: own %v, support %v, billing %v", u.Opens("svc@contoso.test"), u.Opens("Support@contoso.test"), u.Opens("billing@contoso.test"))
	}
}
