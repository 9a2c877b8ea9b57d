package message

import (
	"net/mail"
	"strings"
	"time"
)

// dateLayouts are the broken Date forms seen in real mail that
// net/mail.ParseDate refuses, tried in order after it.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -07:00",    // colon in the offset
	"2 Jan 2006 15:04:05 -07:00",         //
	"Monday, 02-Jan-06 15:04:05 MST",     // RFC 850
	"Mon, 02-Jan-06 15:04:05 MST",        //
	"Mon, 2 Jan 2006 15:04:05 -0700 MST", // offset and abbreviation without parentheses
	"Monday, January 2, 2006 3:04 PM",    // written by hand or by scripts, no zone: UTC
	time.RFC3339,
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",     // no zone: UTC
	"Mon Jan 2 15:04:05 2006", // asctime, no zone: UTC
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon, 2 Jan 2006 15:04:05", // no zone: UTC
	"2 Jan 2006 15:04:05",      // no zone: UTC
	"Mon, 2 Jan 2006 15:04",    // no zone: UTC
}

// zones are the offsets of the zone abbreviations Date headers use
// instead of a numeric offset: RFC 5322's obsolete zones plus the
// European and Asian ones mailers still write. Go's time.Parse would read
// an abbreviation it does not know as UTC.
var zones = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
	"WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "MEZ": 1, "MESZ": 2,
	"EET": 2, "EEST": 3, "MSK": 3, "IST": 5, "JST": 9, "KST": 9, "HKT": 8, "SGT": 8,
	"AEST": 10, "AEDT": 11,
}

// maxDateLen is far longer than any real Date value, comment included.
const maxDateLen = 200

// parseDate reads a Date header leniently: RFC 5322 (with its obsolete
// forms), a trailing comment, and the broken forms in dateLayouts. A
// date without any zone is taken as UTC. The second result is false when
// nothing matched.
func parseDate(v string) (time.Time, bool) {
	if len(v) > maxDateLen {
		return time.Time{}, false
	}
	v = strings.Join(strings.Fields(v), " ")
	if i := strings.Index(v, " ("); i > 0 { // trailing comment such as "(CEST)"
		v = v[:i]
	}
	v = strings.TrimSuffix(v, ",")
	if t, err := mail.ParseDate(v); err == nil {
		return fixZone(t), true
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return fixZone(t), true
		}
	}
	return time.Time{}, false
}

// fixZone gives a time parsed with a zone abbreviation that abbreviation's
// offset (time.Parse reads unknown abbreviations as offset 0).
func fixZone(t time.Time) time.Time {
	name, off := t.Zone()
	h, known := zones[strings.ToUpper(name)]
	if off != 0 || !known || h == 0 {
		return t
	}
	y, mo, d := t.Date()
	return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.FixedZone(name, h*3600))
}
