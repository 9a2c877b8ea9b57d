package auth

// Waiters reports how many Token calls are waiting for the request in flight.
func (s *Source) Waiters() int { return int(s.waiters.Load()) }

// ClassifiedCodes returns every AADSTS code of the classification table.
func ClassifiedCodes() []int {
	codes := make([]int, 0, len(aadsts))
	for c := range aadsts {
		codes = append(codes, c)
	}
	return codes
}
