package storage

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidResourceVersion: a resourceVersion that is not a decimal
// revision (400 Bad Request upstream). It is declared here rather than in
// interface.go, which is a frozen contract; the API server maps it to 400.
var ErrInvalidResourceVersion = errors.New("invalid resource version")

// parseRV parses a resourceVersion: "" is 0.
func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: %w", rv, ErrInvalidResourceVersion)
	}
	return n, nil
}

func formatRV(rev int64) string { return strconv.FormatInt(rev, 10) }
