package auth

import (
	"fmt"
	"strings"
)

// Login hosts of the national clouds (PROTOCOLS.md §2, AADSTS90038).
const (
	AuthorityPublic = "https://login.microsoftonline.com"
	AuthorityUSGov  = "https://login.microsoftonline.us"
	AuthorityChina  = "https://login.chinacloudapi.cn"
)

// DefaultScope is the scope of app-only tokens for Exchange Online, used by
// both IMAP and EWS.
const DefaultScope = "https://outlook.office365.com/.default"

// AuthorityFor returns the login host of a national cloud: "public" (or ""),
// "usgov" or "china". It does no I/O.
func AuthorityFor(cloud string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cloud)) {
	case "", "public":
		return AuthorityPublic, nil
	case "usgov":
		return AuthorityUSGov, nil
	case "china":
		return AuthorityChina, nil
	}
	return "", fmt.Errorf("auth: unknown cloud %q: use public, usgov or china (or set an explicit authority URL)", cloud)
}
