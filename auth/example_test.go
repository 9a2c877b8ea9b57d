package auth_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailpoller/mailpoller/auth"
)

func ExampleSource_Token() {
	src, err := auth.New(auth.Credentials{
		Authority:    auth.AuthorityPublic,
		TenantID:     "contoso.onmicrosoft.com",
		ClientID:     "3f2a6c1e-1111-4b2b-9c1d-0a1b2c3d4e5f",
		ClientSecret: "from-the-config",
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := src.Token(context.Background())
	var ae *auth.Error
	switch {
	case errors.As(err, &ae) && !ae.Transient:
		fmt.Println("an admin must fix:", ae.Fix)
	case err != nil:
		fmt.Println("retry later:", err)
	default:
		fmt.Println("token", tok, "valid until", tok.Expiry) // prints [redacted] for the token
	}
}

func ExampleCredentials_String() {
	c := auth.Credentials{TenantID: "contoso.onmicrosoft.com", ClientID: "app", ClientSecret: "s3cret"}
	fmt.Printf("%v\n", c)
	// Output: {Authority: AllowHTTP:false TenantID:contoso.onmicrosoft.com ClientID:app ClientSecret:[redacted] CertFile: KeyFile: FederatedTokenFile: Scope:}
}
