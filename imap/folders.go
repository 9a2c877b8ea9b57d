package imap

import (
	"fmt"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// PathSeparator separates the levels of a folder path in the config
// ("Inbox/Processed"), whatever the server's own hierarchy delimiter is.
const PathSeparator = "/"

// serverName is the server's name for the folder path name: the levels
// joined with the server's hierarchy delimiter (asked once per connection
// with LIST "" ""), a first level "Inbox" in any case written INBOX. A
// name without PathSeparator is the server's name as written.
func (s *Source) serverName(name string) (string, error) {
	if !strings.Contains(name, PathSeparator) {
		return name, nil
	}
	if s.delim == 0 {
		var list []*goimap.ListData
		err := s.do("list", func() (err error) { list, err = s.c.List("", "", nil).Collect(); return err })
		if err != nil {
			return "", fmt.Errorf("ask the hierarchy delimiter: %w", err)
		}
		s.delim = '/'
		if len(list) > 0 && list[0].Delim != 0 {
			s.delim = list[0].Delim
		}
	}
	return joinPath(name, s.delim), nil
}

// joinPath writes the config path name with delim between its levels.
func joinPath(name string, delim rune) string {
	levels := strings.Split(strings.Trim(name, PathSeparator), PathSeparator)
	if strings.EqualFold(levels[0], "INBOX") {
		levels[0] = "INBOX"
	}
	return strings.Join(levels, string(delim))
}
