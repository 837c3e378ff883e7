package flowcontrol

// hashFlow hashes a flow's identity, the schema's name and the flow
// distinguisher (FNV-1a, then a finalizer that spreads every input bit
// over the whole word, since deal consumes the hash from its low end).
func hashFlow(schema, distinguisher string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(schema); i++ {
		h = (h ^ uint64(schema[i])) * prime
	}
	h = (h ^ 0xff) * prime // separator: ("ab","c") is not ("a","bc")
	for i := 0; i < len(distinguisher); i++ {
		h = (h ^ uint64(distinguisher[i])) * prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// deal returns hand distinct card numbers out of a deck of deck cards, in
// the order dealt, chosen by hash: the first is hash mod deck, the next
// is chosen among the deck-1 left with what remains of hash, and so on
// (shuffle sharding). The same hash always gets the same hand. out is
// reused when it has room.
func deal(hash uint64, deck, hand int, out []int) []int {
	out = out[:0]
	hand = min(hand, deck)
	var buf [64]int
	dealt := buf[:0] // the cards dealt, in increasing order
	for i := 0; i < hand; i++ {
		left := uint64(deck - i)
		j := int(hash % left)
		hash /= left
		// j counts the cards not dealt yet: step over those dealt.
		at := 0
		for ; at < len(dealt) && dealt[at] <= j; at++ {
			j++
		}
		dealt = append(dealt, 0)
		copy(dealt[at+1:], dealt[at:])
		dealt[at] = j
		out = append(out, j)
	}
	return out
}
