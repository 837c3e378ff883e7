package flowcontrol

// A LIST occupies one seat per 100 objects it goes through, as upstream's
// work estimator has it.
const objectsPerSeat = 100

// ListWork describes a LIST for estimating its seats.
type ListWork struct {
	// Stored is how many objects of the resource are stored, in every
	// namespace; negative when unknown.
	Stored int64
	// Limit is the request's ?limit= (0: none).
	Limit int64
	// FromCache is true when the watch cache serves the list (it walks
	// every cached object of the resource, whatever the limit).
	FromCache bool
	// Selective is true when a label or field selector filters the list.
	Selective bool
	// ByName is true when a metadata.name field selector names one object.
	ByName bool
}

// ListSeats returns the seats a LIST occupies in a level whose requests may
// occupy at most maxSeats (Classification.MaxSeats; 0: no maximum), as
// upstream estimates them: from the cache every stored object is walked;
// from etcd the page is read (twice its size without a selector: decode
// and encode), or every object when a selector filters. A count that is
// unknown costs one seat (upstream: the resource is not stored here).
// Unlike upstream's, the estimate is not capped at 10 seats: see
// levelMaxSeats.
func ListSeats(w ListWork, maxSeats int) int {
	if w.ByName || w.Stored < 0 {
		return 1
	}
	limit := w.Stored
	if w.Limit > 0 && w.Limit < limit {
		limit = w.Limit
	}
	var objects int64
	switch {
	case w.FromCache:
		objects = w.Stored
	case w.Selective:
		objects = w.Stored + limit
	default:
		objects = 2 * limit
	}
	seats := max(1, (objects+objectsPerSeat-1)/objectsPerSeat)
	if maxSeats > 0 {
		seats = min(seats, int64(maxSeats))
	}
	return int(seats)
}

// levelMaxSeats is how many seats one request may occupy in a level of
// limit seats: two thirds of it, so that a third is left for others while
// the widest request runs.
//
// Upstream caps a request at 10 seats, and at 15% of its level and its
// limit over its hand size, which lets any level run six or more LISTs of
// any size at once. A LIST of 10,000 pods costs about 160 ms of CPU, a
// hundred times a GET, not ten: six of them at once take all of a 2-core
// server, and another user's GET waits 150 ms at the median, 500 ms at
// p99 (docs/benchmarks.md). With two thirds, a level runs one such LIST
// at a time beside its narrow requests.
func levelMaxSeats(limit int) int {
	return max(1, limit-(limit+2)/3)
}
