package storage

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// continueToken is what a list's continue string encodes: the revision the
// first page was read at and the key (relative to the list's prefix) the
// next page starts at. The shape is upstream's, so tokens look familiar.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

const continueAPIVersion = "meta.k8s.io/v1"

// encodeContinue returns the token for a next page that starts at key (an
// absolute key under prefix), read at rev.
func encodeContinue(key, prefix string, rev int64) (string, error) {
	b, err := json.Marshal(continueToken{
		APIVersion:      continueAPIVersion,
		ResourceVersion: rev,
		StartKey:        strings.TrimPrefix(key, prefix),
	})
	if err != nil {
		return "", fmt.Errorf("encode continue token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeContinue returns the revision and absolute start key of a token
// for a list under prefix.
func decodeContinue(token, prefix string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", fmt.Errorf("%w: not base64: %w", ErrInvalidContinue, err)
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return 0, "", fmt.Errorf("%w: %w", ErrInvalidContinue, err)
	}
	if t.APIVersion != continueAPIVersion {
		return 0, "", fmt.Errorf("%w: version %q is not %q", ErrInvalidContinue, t.APIVersion, continueAPIVersion)
	}
	if t.ResourceVersion <= 0 && t.ResourceVersion != inconsistentRV {
		return 0, "", fmt.Errorf("%w: no resource version", ErrInvalidContinue)
	}
	if t.ResourceVersion == inconsistentRV {
		t.ResourceVersion = 0 // the latest revision
	}
	if t.StartKey == "" {
		return 0, "", fmt.Errorf("%w: no start key", ErrInvalidContinue)
	}
	// The start key must stay under the prefix: reject anything that
	// climbs out of it.
	cleaned := path.Clean("/" + t.StartKey)
	if cleaned == "/" || strings.Contains(t.StartKey, "..") {
		return 0, "", fmt.Errorf("%w: start key %q leaves the prefix", ErrInvalidContinue, t.StartKey)
	}
	return t.ResourceVersion, prefix + t.StartKey, nil
}

// inconsistentRV is the resource version of a continue token that reads
// at the latest revision, as upstream's: the token an expired token's 410
// offers, whose list goes on from the same key at the revision of today.
const inconsistentRV = -1

// ExpiredContinueError is the error of a list whose continue token's
// revision was compacted away. Continue is a token that goes on from the
// same key at the latest revision; Error says what that costs.
type ExpiredContinueError struct {
	Continue string
}

func (e *ExpiredContinueError) Error() string {
	return "The provided continue parameter is too old to display a consistent list result. " +
		"You can start a new list without the continue parameter, or use the continue token in this response to " +
		"retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - " +
		"objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
}

func (e *ExpiredContinueError) Unwrap() error { return ErrExpired }

// expiredContinue is the error of a list from startKey whose revision
// was compacted.
func expiredContinue(startKey, prefix string) error {
	token, err := encodeContinue(startKey, prefix, inconsistentRV)
	if err != nil {
		return err
	}
	return &ExpiredContinueError{Continue: token}
}
